//! The pages over a store filled as users fill it: runs that log and use artifacts, history, hostile names.

use std::collections::BTreeSet;

use artifact_core::Artifact;
use artifact_core::NewFileOptions;
use serde_json::json;
use wandb_api::{Api, RunSettings, Settings};
use wandb_store::EmbeddedStore;
use wandb_web::{Access, NoDownloads, page};

const HOSTILE: &str = "<script>alert('x')</script>&\"";

/// A pipeline as in the main job: load-data logs raw, preprocess uses it and logs clean, train uses clean and logs
/// a model with 3,000 history rows. Names, descriptions, metadata and file paths carry markup.
fn pipeline(dir: &std::path::Path) -> EmbeddedStore {
    let api = Api::new(Settings::embedded(dir.join("store")).with_entity("team").with_cache_dir(None)).unwrap();
    let log = |job: &str, name: &str, artifact_type: &str, uses: Option<&str>, rows: usize| {
        let mut run = api.init(RunSettings::new("proj").job_type(job).name(&format!("{job} {HOSTILE}"))).unwrap();
        if let Some(used) = uses {
            run.use_artifact(used).unwrap();
        }
        let mut artifact = Artifact::new(name, artifact_type).unwrap();
        artifact.set_description(Some(format!("described {HOSTILE}")));
        artifact.set_metadata(json!({"note": HOSTILE, "nested": {"deep": [1, 2, {"k": "v"}]}})).unwrap();
        let mut file = artifact.new_file(&format!("dir/{HOSTILE}.txt"), NewFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut file, format!("text {HOSTILE}").as_bytes()).unwrap();
        file.close().unwrap();
        for i in 0..rows {
            run.log(json!({"loss": 1.0 / (i as f64 + 1.0), "acc": (i % 7) as f64}).as_object().cloned().unwrap())
                .unwrap();
        }
        run.log_artifact(&artifact, &["best"]).unwrap();
        run.finish().unwrap();
    };
    log("load-data", "raw", "dataset", None, 0);
    log("preprocess", "clean", "dataset", Some("raw:latest"), 0);
    log("train", "model", "model", Some("clean:latest"), 3000);
    EmbeddedStore::open(dir.join("store")).unwrap()
}

fn get(store: &EmbeddedStore, path: &str, query: &str) -> (u16, String) {
    let answer = page(store, &NoDownloads, path, query, &Access::Everything);
    (answer.status, String::from_utf8(answer.body).unwrap())
}

#[test]
fn every_page_renders_and_escapes_what_it_shows() {
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline(dir.path());
    let pages = [
        ("/", ""),
        ("/team", ""),
        ("/team/proj", ""),
        ("/team/proj/artifacts/model", ""),
        ("/team/proj/artifacts/model/model", ""),
        ("/team/proj/artifacts/model/model/v0", ""),
        ("/team/proj/artifacts/model/model/v0/metadata", ""),
        ("/team/proj/artifacts/model/model/v0/files", "dir=dir%2F"),
        ("/team/proj/artifacts/model/model/v0/files", &format!("preview=dir%2F{}.txt", escape_query(HOSTILE))),
        ("/team/proj/artifacts/model/model/v0/lineage", ""),
        ("/team/proj/artifacts/model/model/best/usage", ""),
        ("/team/proj/runs", ""),
    ];
    for (path, query) in pages {
        let (status, html) = get(&store, path, query);
        assert_eq!(status, 200, "{path}?{query}: {html}");
        assert!(!html.contains("<script>"), "{path}?{query} shows markup unescaped");
    }
    let (_, files) = get(
        &store,
        "/team/proj/artifacts/model/model/v0/files",
        &format!("preview=dir%2F{}.txt", escape_query(HOSTILE)),
    );
    assert!(files.contains("text &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"), "{files}");
    let (_, metadata) = get(&store, "/team/proj/artifacts/model/model/v0/metadata", "");
    assert!(metadata.contains("<b>deep</b>") && metadata.contains("&lt;script&gt;"), "{metadata}");
    let (_, overview) = get(&store, "/team/proj/artifacts/model/model/v0", "");
    assert!(overview.contains("<span class=\"alias\">best</span>") && overview.contains("described &lt;script&gt;"));
    for missing in
        ["/nobody", "/team/nothing", "/team/proj/artifacts/dataset/model/v0", "/team/proj/artifacts/model/model/v9"]
    {
        assert_eq!(get(&store, missing, "").0, 404, "{missing}");
    }
}

fn escape_query(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[test]
fn the_lineage_graph_links_the_pipeline_left_to_right() {
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline(dir.path());
    let (_, html) = get(&store, "/team/proj/artifacts/model/model/v0/lineage", "depth=4");
    let node = |name: &str| {
        let at = html.find(&format!("data-name=\"{name}\"")).unwrap_or_else(|| panic!("no node {name}: {html}"));
        // The x of the node's rect, which follows its anchor.
        let rest = &html[at..];
        let x = rest.split("x=\"").nth(1).unwrap().split('"').next().unwrap();
        x.parse::<i64>().unwrap()
    };
    let run = |job: &str| format!("{job} &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;");
    let columns = [node("raw:v0"), node(&run("preprocess")), node("clean:v0"), node(&run("train")), node("model:v0")];
    assert!(columns.windows(2).all(|w| w[0] < w[1]), "not left to right: {columns:?}");
    assert_eq!(html.matches("class=\"edge\" data-kind=\"used\"").count(), 2, "{html}");
    // load-data → raw is beyond depth 4 from the model (5 edges): not drawn.
    assert_eq!(html.matches("class=\"edge\" data-kind=\"logged\"").count(), 2, "{html}");
    let (_, deeper) = get(&store, "/team/proj/artifacts/model/model/v0/lineage", "depth=5");
    assert_eq!(deeper.matches("class=\"edge\"").count(), 5);
    // The same graph draws the same way every time.
    assert_eq!(get(&store, "/team/proj/artifacts/model/model/v0/lineage", "depth=5").1, deeper);
}

#[test]
fn run_pages_chart_every_history_key_downsampled() {
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline(dir.path());
    let project = wandb_store::ProjectRef::new("team", "proj").unwrap();
    let train = store.runs(&project).unwrap().into_iter().find(|r| r.job_type.as_deref() == Some("train")).unwrap();
    let (status, html) = get(&store, &format!("/team/proj/runs/{}", train.id), "");
    assert_eq!(status, 200);
    for key in ["acc", "loss"] {
        let figure = html.split(&format!("data-key=\"{key}\"")).nth(1).unwrap_or_else(|| panic!("no {key} chart"));
        let drawn: usize = figure.split("data-points=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!((500..=1000).contains(&drawn), "{key}: {drawn} points drawn");
        assert!(figure.contains("data-total=\"3000\""));
    }
    assert!(html.contains("<span id=\"run-state\">finished</span>"), "{html}");
}

#[test]
fn a_viewer_sees_only_their_entities() {
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline(dir.path());
    let others = Access::Entities(BTreeSet::from(["other".to_owned()]));
    let home = String::from_utf8(page(&store, &NoDownloads, "/", "", &others).body).unwrap();
    assert!(!home.contains("/team"), "{home}");
    for path in ["/team", "/team/proj", "/team/proj/artifacts/model/model/v0"] {
        assert_eq!(page(&store, &NoDownloads, path, "", &others).status, 404, "{path}");
    }
}

#[test]
fn a_run_named_with_markup_shows_its_name_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline(dir.path());
    let project = wandb_store::ProjectRef::new("team", "proj").unwrap();
    for run in store.runs(&project).unwrap() {
        let (status, html) = get(&store, &format!("/team/proj/runs/{}", run.id), "");
        assert_eq!(status, 200);
        assert!(!html.contains("<script>"), "the run page of {} shows markup unescaped", run.id);
        let job = run.job_type.unwrap();
        assert!(
            html.contains(&format!("<h1>{job} &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;</h1>")),
            "{html}"
        );
    }
}

/// An API on the store in `dir` (entity `team`).
fn api(dir: &std::path::Path) -> Api {
    Api::new(Settings::embedded(dir.join("store")).with_entity("team").with_cache_dir(None)).unwrap()
}

fn text_artifact(name: &str, artifact_type: &str, files: &[(&str, &[u8])]) -> Artifact {
    let mut artifact = Artifact::new(name, artifact_type).unwrap();
    for (path, body) in files {
        let mut file = artifact.new_file(path, NewFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut file, body).unwrap();
        file.close().unwrap();
    }
    artifact
}

/// Links bodies at `/dl/<path>`.
struct TestLinks;

impl wandb_web::FileLinks for TestLinks {
    fn download_url(&self, _: &str, path: &str, _: &artifact_core::ManifestEntry) -> Option<String> {
        Some(format!("/dl/{path}"))
    }
}

fn wandb_table_json(rows: usize) -> Vec<u8> {
    let data: Vec<serde_json::Value> = (0..rows).map(|i| json!([i, format!("<b>row {i}</b>")])).collect();
    serde_json::to_vec(
        &json!({"_type": "table", "columns": ["n", "<i>label</i>"], "data": data, "ncols": 2, "nrows": rows}),
    )
    .unwrap()
}

#[test]
fn the_files_tab_previews_tables_images_and_references() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path());
    let big = wandb_table_json(60_000);
    assert!(big.len() > 1 << 20, "the big table is over the preview's megabyte: {}", big.len());
    let mut artifact = text_artifact(
        "media",
        "dataset",
        &[("small.table.json", &wandb_table_json(3)), ("big.table.json", &big), ("plot.png", b"\x89PNG not really")],
    );
    let offline = artifact_core::ReferenceOptions { checksum: false, ..Default::default() };
    artifact.add_reference("https://example.com/data/remote.csv", offline.clone()).unwrap();
    let named = artifact_core::ReferenceOptions { name: Some("object.bin".to_owned()), ..offline };
    artifact.add_reference("s3://bucket/key/object.bin", named).unwrap();
    api.log_artifact(&artifact, &wandb_api::LogOptions::default()).unwrap();
    let store = EmbeddedStore::open(dir.path().join("store")).unwrap();
    let files = "/team/uncategorized/artifacts/dataset/media/v0/files";
    let project = api.project();
    let show = |query: &str| {
        let path = files.replace("uncategorized", project.project());
        let answer = page(&store, &TestLinks, &path, query, &Access::Everything);
        assert_eq!(answer.status, 200, "{query}");
        String::from_utf8(answer.body).unwrap()
    };

    // A small table: every row, cells and headers escaped, nothing said about a cut.
    let small = show("preview=small.table.json");
    assert!(small.contains("<table id=\"wandb-table\">"), "{small}");
    assert!(small.contains("<th>n</th><th>&lt;i&gt;label&lt;/i&gt;</th>"), "{small}");
    assert!(small.contains("<td>2</td><td>&lt;b&gt;row 2&lt;/b&gt;</td>"), "{small}");
    assert!(!small.contains("preview-cut"), "{small}");
    // A big one: the first 100 rows of the first megabyte, and the page says it is cut.
    let cut = show("preview=big.table.json");
    let table = cut.split("<table id=\"wandb-table\">").nth(1).expect("the big table renders");
    assert_eq!(table.split("</table>").next().unwrap().matches("<tr>").count(), 101, "a header and 100 rows");
    assert!(cut.contains("class=\"muted preview-cut\"") && cut.contains("reads only the first 1.0 MiB"), "{cut}");
    // An image: shown from its download URL.
    let image = show("preview=plot.png");
    assert!(image.contains("<img class=\"preview\" alt=\"plot.png\" src=\"/dl/plot.png\""), "{image}");
    // References: http(s) as links, other schemes as text.
    let listing = show("");
    assert!(listing.contains("<a href=\"https://example.com/data/remote.csv\">reference</a>"), "{listing}");
    assert!(listing.contains("<code>s3://bucket/key/object.bin</code>"), "{listing}");
    assert!(!listing.contains("href=\"s3://"), "{listing}");
}

#[test]
fn the_files_tab_pages_past_200_entries() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path());
    let names: Vec<String> = (0..250).map(|i| format!("f{i:03}.txt")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), n.as_bytes())).collect();
    api.log_artifact(&text_artifact("many", "dataset", &files), &wandb_api::LogOptions::default()).unwrap();
    let store = EmbeddedStore::open(dir.path().join("store")).unwrap();
    let path = format!("/team/{}/artifacts/dataset/many/v0/files", api.project().project());
    let (status, first) = get(&store, &path, "");
    assert_eq!(status, 200);
    let rows = |html: &str| html.split("<table id=\"files\">").nth(1).unwrap().matches("<tr>").count() - 1;
    assert_eq!(rows(&first), 200);
    assert!(first.contains(">f199.txt<") && !first.contains(">f200.txt<"));
    let next = first.split("<p class=\"pager\"><a href=\"").nth(1).expect("a next link").split('"').next().unwrap();
    let query = next.split_once('?').unwrap().1.replace("&amp;", "&");
    let (status, second) = get(&store, &path, &query);
    assert_eq!(status, 200);
    assert_eq!(rows(&second), 50);
    assert!(second.contains(">f200.txt<") && second.contains(">f249.txt<") && !second.contains(">f199.txt<"));
    assert!(!second.contains("next files"), "the last page has no next link");
}

#[test]
fn registry_and_linked_collections_are_marked() {
    let dir = tempfile::tempdir().unwrap();
    let api = api(dir.path());
    let run = api.init(RunSettings::new("proj").job_type("train")).unwrap();
    run.log_artifact(&text_artifact("model", "model", &[("w.bin", b"w")]), &[]).unwrap();
    run.finish().unwrap();
    let version = api.artifact("proj/model:v0").unwrap();
    version.link("proj/chosen", &[]).unwrap();
    version.link("wandb-registry-model/production", &["prod"]).unwrap();
    let store = EmbeddedStore::open(dir.path().join("store")).unwrap();

    let (_, entity) = get(&store, "/team", "");
    assert!(entity.contains("wandb-registry-model</a> <span class=\"kind\">registry</span>"), "{entity}");
    let (_, project) = get(&store, "/team/proj", "");
    assert!(project.contains("chosen</a> <span class=\"kind\">linked</span>"), "{project}");
    assert!(!project.contains("model</a> <span class=\"kind\">"), "the source collection is not marked: {project}");
    let (_, registry) = get(&store, "/team/wandb-registry-model", "");
    assert!(registry.contains("production</a> <span class=\"kind\">registry collection</span>"), "{registry}");

    // The registry version's lineage is its source's: the run that logged it.
    let (status, lineage) = get(&store, "/team/wandb-registry-model/artifacts/model/production/prod/lineage", "");
    assert_eq!(status, 200);
    assert!(lineage.contains("data-kind=\"run\""), "the source's run is drawn: {lineage}");
    assert_eq!(lineage.matches("class=\"edge\" data-kind=\"logged\"").count(), 1, "{lineage}");
    let (_, overview) = get(&store, "/team/wandb-registry-model/artifacts/model/production/v0", "");
    assert!(overview.contains("<a href=\"/team/proj/artifacts/model/model/v0\">team/proj/model:v0</a>"), "{overview}");
    assert!(
        overview.contains(&format!("<a href=\"/team/proj/runs/{}\">", run_id(&store, "proj", "train"))),
        "{overview}"
    );
}

fn run_id(store: &EmbeddedStore, project: &str, job_type: &str) -> String {
    let project = wandb_store::ProjectRef::new("team", project).unwrap();
    store.runs(&project).unwrap().into_iter().find(|r| r.job_type.as_deref() == Some(job_type)).unwrap().id
}

/// `team/data` logs `raw`; a run of `team/train` uses it, and so does a run of another entity.
fn across_projects(dir: &std::path::Path) -> (EmbeddedStore, String) {
    let api = api(dir);
    let load = api.init(RunSettings::new("data").job_type("load")).unwrap();
    load.log_artifact(&text_artifact("raw", "dataset", &[("x.txt", b"x")]), &[]).unwrap();
    load.finish().unwrap();
    // A collection of the same name in the consumer's project: a link built in the wrong project finds it.
    let decoy = api.init(RunSettings::new("train").job_type("decoy")).unwrap();
    decoy.log_artifact(&text_artifact("raw", "dataset", &[("decoy.txt", b"decoy")]), &[]).unwrap();
    decoy.finish().unwrap();
    let train = api.init(RunSettings::new("train").job_type("train")).unwrap();
    train.use_artifact("team/data/raw:v0").unwrap();
    let train_id = train.id().to_owned();
    train.finish().unwrap();
    let stranger = api.init(RunSettings::new("theirs").entity("other").job_type("peek")).unwrap();
    stranger.use_artifact("team/data/raw:v0").unwrap();
    stranger.finish().unwrap();
    (EmbeddedStore::open(dir.join("store")).unwrap(), train_id)
}

#[test]
fn artifacts_used_from_another_project_link_to_their_own_project() {
    let dir = tempfile::tempdir().unwrap();
    let (store, train_id) = across_projects(dir.path());
    let (_, run_page) = get(&store, &format!("/team/train/runs/{train_id}"), "");
    assert!(run_page.contains("<a href=\"/team/data/artifacts/dataset/raw/v0\">team/data/raw:v0</a>"), "{run_page}");
    assert!(!run_page.contains("href=\"/team/train/artifacts/dataset/raw/v0\""), "{run_page}");
    // The run's lineage node links there too.
    assert!(run_page.contains("href=\"/team/data/artifacts/dataset/raw/v0\" data-kind=\"artifact\""), "{run_page}");

    // raw's lineage in its own project shows its producer and the consumer in the other project.
    let (_, lineage) = get(&store, "/team/data/artifacts/dataset/raw/v0/lineage", "");
    assert!(lineage.contains(&format!("href=\"/team/train/runs/{train_id}\"")), "{lineage}");
    assert_eq!(lineage.matches("class=\"edge\" data-kind=\"used\"").count(), 2, "train and the stranger: {lineage}");
    assert_eq!(lineage.matches("class=\"edge\" data-kind=\"logged\"").count(), 1, "{lineage}");
    // A viewer of team alone does not see the other entity's run.
    let team = Access::Entities(BTreeSet::from(["team".to_owned()]));
    let seen = page(&store, &NoDownloads, "/team/data/artifacts/dataset/raw/v0/lineage", "", &team);
    let seen = String::from_utf8(seen.body).unwrap();
    assert_eq!(seen.matches("class=\"edge\" data-kind=\"used\"").count(), 1, "{seen}");
    assert!(!seen.contains("/other/") && !seen.contains("peek"), "{seen}");
}

#[test]
fn run_records_written_before_edges_named_their_project_still_link_right() {
    let dir = tempfile::tempdir().unwrap();
    let (store, train_id) = across_projects(dir.path());
    // The record as older versions wrote it: edges without entity and project.
    let record = dir.path().join(format!("store/entities/team/projects/train/runs/{train_id}.json"));
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    for edge in json["inputs"].as_array_mut().unwrap() {
        let edge = edge.as_object_mut().unwrap();
        assert!(edge.remove("entity").is_some() && edge.remove("project").is_some(), "new edges carry both");
    }
    std::fs::write(&record, serde_json::to_vec(&json).unwrap()).unwrap();
    let (status, run_page) = get(&store, &format!("/team/train/runs/{train_id}"), "");
    assert_eq!(status, 200);
    assert!(run_page.contains("<a href=\"/team/data/artifacts/dataset/raw/v0\">team/data/raw:v0</a>"), "{run_page}");
}

#[test]
fn signed_in_pages_carry_a_sign_out_control() {
    let dir = tempfile::tempdir().unwrap();
    let store = pipeline(dir.path());
    let signed =
        wandb_web::page_for(&store, &NoDownloads, "/team", "", &wandb_web::Viewer::signed_in(Access::Everything));
    let html = String::from_utf8(signed.body).unwrap();
    assert!(html.contains("<form class=\"logout\" method=\"post\" action=\"/logout\">"), "{html}");
    let (_, anonymous) = get(&store, "/team", "");
    assert!(!anonymous.contains("/logout"), "{anonymous}");
}
