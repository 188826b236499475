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
