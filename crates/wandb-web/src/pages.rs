//! The pages, one function each. Lists are paged; nothing here reads more than a page needs beyond the records
//! it lists from.

use std::fmt::Write as _;

use artifact_core::{Manifest, ManifestEntry};
use serde_json::{Map, Value};
use wandb_store::{ArtifactVersion, CollectionKind, EmbeddedStore, ProjectRef, RunState};

use crate::html::{escape, frame, human_size, link, query_value, segment, split_path, table, tabs};
use crate::lineage::{Graph, Label, Node, RunKey};
use crate::{Access, FileLinks, Page, Viewer, chart};

/// Rows per page of a list.
const PAGE_ROWS: usize = 100;
/// Files per page of the Files tab.
const FILES_PER_PAGE: usize = 200;
/// Text previews up to this size.
const PREVIEW_BYTES: u64 = 64 << 10;
/// Table previews: the first rows.
const TABLE_ROWS: usize = 100;
/// Table previews read at most this much of the file: a huge table is never read (or parsed) whole.
const TABLE_PREVIEW_BYTES: u64 = 1 << 20;
/// Console lines shown: the last ones.
const CONSOLE_LINES: usize = 1000;
/// Edges either way the lineage graph shows by default: the whole of a three-step pipeline (data, preprocessing,
/// training) from any of its versions.
const DEFAULT_DEPTH: usize = 6;
/// The most it shows (the graph also stops at 200 nodes).
const MAX_DEPTH: usize = 10;
/// The version tabs, with the W&B App's suffixes.
const TABS: [&str; 5] = ["overview", "metadata", "files", "lineage", "usage"];

struct Ctx<'a> {
    store: &'a EmbeddedStore,
    links: &'a dyn FileLinks,
    query: &'a str,
    access: &'a Access,
    signed_in: bool,
}

impl Ctx<'_> {
    /// The page around `body` (with the sign-out control for a signed-in viewer).
    fn frame(&self, title: &str, crumbs: &[(String, String)], body: &str) -> String {
        frame(title, crumbs, body, self.signed_in)
    }
}

pub(crate) fn render(store: &EmbeddedStore, links: &dyn FileLinks, path: &str, query: &str, viewer: &Viewer) -> Page {
    let Some(segments) = split_path(path) else {
        let body = "<h1>Bad request</h1><p>The path is not UTF-8.</p>";
        return Page::html(400, frame("Bad request", &[], body, viewer.signed_in));
    };
    let access = &viewer.access;
    let ctx = Ctx { store, links, query, access, signed_in: viewer.signed_in };
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let Some(entity) = s.first()
        && !access.allows(entity)
    {
        return not_found(&ctx, path);
    }
    let result = match s.as_slice() {
        [] => home(&ctx, access),
        [entity] => entity_page(&ctx, entity),
        [entity, project] | [entity, project, "artifacts"] => project_page(&ctx, entity, project, None),
        [entity, project, "artifacts", artifact_type] => project_page(&ctx, entity, project, Some(artifact_type)),
        [entity, project, "artifacts", artifact_type, name] => {
            collection_page(&ctx, entity, project, artifact_type, name)
        }
        [entity, project, "artifacts", artifact_type, name, version] => {
            version_page(&ctx, entity, project, artifact_type, name, version, "overview")
        }
        [entity, project, "artifacts", artifact_type, name, version, tab] if TABS.contains(tab) => {
            version_page(&ctx, entity, project, artifact_type, name, version, tab)
        }
        [entity, project, "runs"] => runs_page(&ctx, entity, project),
        [entity, project, "runs", run_id] | [entity, project, "runs", run_id, "overview" | "logs"] => {
            run_page(&ctx, entity, project, run_id)
        }
        _ => None,
    };
    result.unwrap_or_else(|| not_found(&ctx, path))
}

fn not_found(ctx: &Ctx<'_>, path: &str) -> Page {
    Page::html(
        404,
        ctx.frame("Not found", &[], &format!("<h1>Not found</h1><p>Nothing here: <code>{}</code></p>", escape(path))),
    )
}

fn project_ref(entity: &str, project: &str) -> Option<ProjectRef> {
    ProjectRef::new(entity, project).ok()
}

fn entity_href(entity: &str) -> String {
    format!("/{}", segment(entity))
}

fn project_href(p: &ProjectRef) -> String {
    format!("/{}/{}", segment(p.entity()), segment(p.project()))
}

fn collection_href(p: &ProjectRef, artifact_type: &str, name: &str) -> String {
    format!("{}/artifacts/{}/{}", project_href(p), segment(artifact_type), segment(name))
}

fn version_href(v: &ArtifactVersion) -> String {
    let p = ProjectRef::new(&v.entity, &v.project).expect("stored versions have valid projects");
    format!("{}/{}", collection_href(&p, &v.artifact_type, &v.name), segment(&v.version()))
}

fn run_href(p: &ProjectRef, run_id: &str) -> String {
    format!("{}/runs/{}", project_href(p), segment(run_id))
}

fn crumbs_for(p: &ProjectRef) -> Vec<(String, String)> {
    vec![(p.entity().to_owned(), entity_href(p.entity())), (p.project().to_owned(), project_href(p))]
}

fn aliases_html(aliases: &[String]) -> String {
    aliases.iter().map(|a| format!("<span class=\"alias\">{}</span>", escape(a))).collect()
}

fn tags_html(tags: &[String]) -> String {
    tags.iter().map(|t| format!("<span class=\"tag\">{}</span>", escape(t))).collect()
}

/// `?page=N` (1-based) and the slice of `items` it shows, with the pager's HTML.
fn paged<'a, T>(ctx: &Ctx<'_>, items: &'a [T], base: &str, key: &str) -> (&'a [T], String) {
    let pages = items.len().div_ceil(PAGE_ROWS).max(1);
    let page = query_value(ctx.query, key).and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).clamp(1, pages);
    let start = (page - 1) * PAGE_ROWS;
    let shown = &items[start.min(items.len())..(start + PAGE_ROWS).min(items.len())];
    let mut pager = String::new();
    if pages > 1 {
        let _ = write!(pager, "<p class=\"pager\">page {page} of {pages} ({} in all)", items.len());
        if page > 1 {
            let _ = write!(pager, " {}", link(&format!("{base}?{key}={}", page - 1), "previous"));
        }
        if page < pages {
            let _ = write!(pager, " {}", link(&format!("{base}?{key}={}", page + 1), "next"));
        }
        pager.push_str("</p>");
    }
    (shown, pager)
}

fn home(ctx: &Ctx<'_>, access: &Access) -> Option<Page> {
    let entities = ctx.store.entities().ok()?;
    let rows: Vec<Vec<String>> = entities
        .iter()
        .filter(|e| access.allows(e))
        .map(|e| {
            let projects = ctx.store.projects(e).map(|p| p.len()).unwrap_or(0);
            vec![link(&entity_href(e), e), projects.to_string()]
        })
        .collect();
    let body = if rows.is_empty() {
        "<h1>Entities</h1><p class=\"muted\">Nothing logged yet.</p>".to_owned()
    } else {
        format!("<h1>Entities</h1>{}", table("entities", &["entity", "projects"], &rows))
    };
    Some(Page::html(200, ctx.frame("Entities", &[], &body)))
}

fn entity_page(ctx: &Ctx<'_>, entity: &str) -> Option<Page> {
    let projects = ctx.store.projects(entity).ok()?;
    if projects.is_empty() {
        return None;
    }
    let rows: Vec<Vec<String>> = projects
        .iter()
        .map(|p| {
            let registry =
                if p.project().starts_with("wandb-registry-") { " <span class=\"kind\">registry</span>" } else { "" };
            vec![format!("{}{registry}", link(&project_href(p), p.project()))]
        })
        .collect();
    let body = format!("<h1>{}</h1>{}", escape(entity), table("projects", &["project"], &rows));
    Some(Page::html(200, ctx.frame(entity, &[(entity.to_owned(), entity_href(entity))], &body)))
}

fn project_page(ctx: &Ctx<'_>, entity: &str, project: &str, only_type: Option<&str>) -> Option<Page> {
    let p = project_ref(entity, project)?;
    if !ctx.store.project_exists(&p) {
        return None;
    }
    let mut collections = ctx.store.collections(&p, only_type).ok()?;
    collections.sort_by(|a, b| (&a.artifact_type, &a.name).cmp(&(&b.artifact_type, &b.name)));
    let base = match only_type {
        Some(t) => format!("{}/artifacts/{}", project_href(&p), segment(t)),
        None => project_href(&p),
    };
    let (shown, pager) = paged(ctx, &collections, &base, "page");
    let mut types: Vec<&str> = collections.iter().map(|c| c.artifact_type.as_str()).collect();
    types.dedup();
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|c| {
            let kind = match (c.kind, p.project().starts_with("wandb-registry-")) {
                (CollectionKind::Portfolio, true) => " <span class=\"kind\">registry collection</span>",
                (CollectionKind::Portfolio, false) => " <span class=\"kind\">linked</span>",
                _ => "",
            };
            vec![
                link(&format!("{}/artifacts/{}", project_href(&p), segment(&c.artifact_type)), &c.artifact_type),
                format!("{}{kind}", link(&collection_href(&p, &c.artifact_type, &c.name), &c.name)),
                c.version_count.to_string(),
                format!("{} {}", link(&version_href(&c.latest), &c.latest.version()), aliases_html(&c.latest.aliases)),
                escape(&c.latest.created_at),
            ]
        })
        .collect();
    let mut body = format!("<h1>{}</h1>", escape(project));
    let _ = write!(
        body,
        "<h2>Artifacts</h2><p class=\"muted\">types: {}</p>{}{pager}",
        types
            .iter()
            .map(|t| link(&format!("{}/artifacts/{}", project_href(&p), segment(t)), t))
            .collect::<Vec<_>>()
            .join(", "),
        table("collections", &["type", "collection", "versions", "latest", "updated"], &rows)
    );
    if only_type.is_none() {
        let runs = ctx.store.runs(&p).ok()?;
        let (shown, pager) = paged(ctx, &runs, &project_href(&p), "runs");
        let _ = write!(body, "<h2>Runs</h2>{}{pager}", runs_table(ctx, &p, shown));
    }
    Some(Page::html(200, ctx.frame(project, &crumbs_for(&p), &body)))
}

fn runs_table(ctx: &Ctx<'_>, p: &ProjectRef, runs: &[wandb_store::RunRecord]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .rev()
        .map(|r| {
            let state = ctx.store.run_status(p, &r.id).map(|s| state_name(s.state)).unwrap_or("unknown");
            vec![
                link(&run_href(p, &r.id), &r.id),
                escape(r.name.as_deref().unwrap_or("")),
                escape(r.job_type.as_deref().unwrap_or("")),
                escape(state),
                r.inputs.len().to_string(),
                r.outputs.len().to_string(),
                escape(&r.created_at),
            ]
        })
        .collect();
    table("runs", &["run", "name", "job type", "state", "used", "logged", "created"], &rows)
}

fn runs_page(ctx: &Ctx<'_>, entity: &str, project: &str) -> Option<Page> {
    let p = project_ref(entity, project)?;
    if !ctx.store.project_exists(&p) {
        return None;
    }
    let runs = ctx.store.runs(&p).ok()?;
    let (shown, pager) = paged(ctx, &runs, &format!("{}/runs", project_href(&p)), "page");
    let body = format!("<h1>Runs of {}</h1>{}{pager}", escape(project), runs_table(ctx, &p, shown));
    Some(Page::html(200, ctx.frame("Runs", &crumbs_for(&p), &body)))
}

fn state_name(state: RunState) -> &'static str {
    match state {
        RunState::Running => "running",
        RunState::Finished => "finished",
        RunState::Failed => "failed",
        RunState::Crashed => "crashed",
        RunState::Killed => "killed",
        _ => "unknown",
    }
}

fn collection_page(ctx: &Ctx<'_>, entity: &str, project: &str, artifact_type: &str, name: &str) -> Option<Page> {
    let p = project_ref(entity, project)?;
    let mut versions = ctx.store.versions(&p, name).ok()?;
    if versions.first().is_none_or(|v| v.artifact_type != artifact_type) {
        return None;
    }
    versions.sort_by_key(|v| std::cmp::Reverse(v.version_index));
    let (shown, pager) = paged(ctx, &versions, &collection_href(&p, artifact_type, name), "page");
    let body = format!(
        "<h1>{} <span class=\"muted\">{}</span></h1>{}{pager}",
        escape(name),
        escape(artifact_type),
        versions_table(shown)
    );
    let mut crumbs = crumbs_for(&p);
    crumbs.push((name.to_owned(), collection_href(&p, artifact_type, name)));
    Some(Page::html(200, ctx.frame(name, &crumbs, &body)))
}

fn versions_table(versions: &[ArtifactVersion]) -> String {
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                link(&version_href(v), &v.version()),
                aliases_html(&v.aliases),
                format!("<code>{}</code>", escape(&v.digest)),
                human_size(v.size),
                v.file_count.to_string(),
                escape(&v.created_at),
            ]
        })
        .collect();
    table("versions", &["version", "aliases", "digest", "size", "files", "created"], &rows)
}

#[allow(clippy::too_many_arguments, reason = "the URL's parts, one each")]
fn version_page(
    ctx: &Ctx<'_>,
    entity: &str,
    project: &str,
    artifact_type: &str,
    name: &str,
    version: &str,
    tab: &str,
) -> Option<Page> {
    let p = project_ref(entity, project)?;
    let v = ctx.store.artifact(&p, name, version).ok()?;
    if v.artifact_type != artifact_type {
        return None;
    }
    let href = version_href(&v);
    let items: Vec<(&str, String, bool)> = TABS
        .iter()
        .map(|t| {
            let label = match *t {
                "overview" => "Overview",
                "metadata" => "Metadata",
                "files" => "Files",
                "lineage" => "Lineage",
                _ => "Usage",
            };
            (label, format!("{href}/{t}"), *t == tab)
        })
        .collect();
    let mut body =
        format!("<h1>{}:{} {}</h1>{}", escape(&v.name), escape(&v.version()), aliases_html(&v.aliases), tabs(&items));
    let content = match tab {
        "metadata" => format!("<h2>Metadata</h2>{}", json_tree(&Value::Object(v.metadata.clone()))),
        "files" => files_tab(ctx, &v, &href)?,
        "lineage" => lineage_tab(ctx, &p, &v, &href)?,
        "usage" => usage_tab(&v),
        _ => overview_tab(ctx, &p, &v)?,
    };
    body.push_str(&content);
    let mut crumbs = crumbs_for(&p);
    crumbs.push((v.name.clone(), collection_href(&p, &v.artifact_type, &v.name)));
    crumbs.push((v.version(), href.clone()));
    Some(Page::html(200, ctx.frame(&v.qualified_name(), &crumbs, &body)))
}

fn overview_tab(ctx: &Ctx<'_>, p: &ProjectRef, v: &ArtifactVersion) -> Option<String> {
    // A version seen through a portfolio or registry collection was logged in its source's project.
    let source = match &v.linked_from {
        Some(_) => ctx.store.locate_artifact(&v.id).ok().flatten(),
        None => None,
    };
    let run_project = source.as_ref().map_or(p, |s| &s.project);
    let created_by = match &v.created_by {
        Some(run) if ctx.access.allows(run_project.entity()) => link(&run_href(run_project, run), run),
        Some(_) => "<span class=\"muted\">a run you may not see</span>".to_owned(),
        None => "<span class=\"muted\">no run</span>".to_owned(),
    };
    let ttl = match v.ttl {
        wandb_store::Ttl::Seconds(s) => format!("{s} s after creation"),
        wandb_store::Ttl::None => "never expires".to_owned(),
        _ => "the entity's policy (none in the embedded store)".to_owned(),
    };
    let rows = vec![
        vec!["name".to_owned(), escape(&v.qualified_name())],
        vec!["type".to_owned(), escape(&v.artifact_type)],
        vec!["aliases".to_owned(), aliases_html(&v.aliases)],
        vec!["tags".to_owned(), tags_html(&v.tags)],
        vec!["digest".to_owned(), format!("<code>{}</code> ({})", escape(&v.digest), escape(&v.digest_algorithm))],
        vec!["size".to_owned(), human_size(v.size)],
        vec!["files".to_owned(), v.file_count.to_string()],
        vec!["created by".to_owned(), created_by],
        vec!["created at".to_owned(), escape(&v.created_at)],
        vec!["description".to_owned(), escape(v.description.as_deref().unwrap_or(""))],
        vec!["time to live".to_owned(), escape(&ttl)],
        vec!["id".to_owned(), format!("<code>{}</code>", escape(&v.id))],
    ];
    let mut rows = rows;
    if let Some(linked_from) = &v.linked_from {
        let shown = match &source {
            Some(s) if ctx.access.allows(s.project.entity()) => link(&location_href(s), linked_from),
            _ => escape(linked_from),
        };
        rows.insert(1, vec!["linked from".to_owned(), shown]);
    }
    let mut versions = ctx.store.versions(p, &v.name).ok()?;
    versions.sort_by_key(|v| std::cmp::Reverse(v.version_index));
    versions.truncate(PAGE_ROWS);
    Some(format!("{}<h2>Versions</h2>{}", table("overview", &["", ""], &rows), versions_table(&versions)))
}

/// JSON folded as nested `<details>`: objects and arrays open at the top level, closed below.
fn json_tree(value: &Value) -> String {
    fn walk(value: &Value, depth: usize, out: &mut String) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, item) in map {
                    container(key, item, depth, out);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    container(&i.to_string(), item, depth, out);
                }
            }
            other => {
                let _ = write!(out, "<code>{}</code>", escape(&other.to_string()));
            }
        }
    }
    fn container(key: &str, item: &Value, depth: usize, out: &mut String) {
        match item {
            Value::Object(m) if !m.is_empty() => nested(key, item, depth, out, &format!("{{{} keys}}", m.len())),
            Value::Array(a) if !a.is_empty() => nested(key, item, depth, out, &format!("[{} items]", a.len())),
            leaf => {
                let _ = write!(out, "<div><b>{}</b>: <code>{}</code></div>", escape(key), escape(&leaf.to_string()));
            }
        }
    }
    fn nested(key: &str, item: &Value, depth: usize, out: &mut String, summary: &str) {
        let open = if depth == 0 { " open" } else { "" };
        let _ = write!(
            out,
            "<details{open}><summary><b>{}</b> {}</summary><div style=\"margin-left:18px\">",
            escape(key),
            escape(summary)
        );
        walk(item, depth + 1, out);
        out.push_str("</div></details>");
    }
    let mut out = String::from("<div class=\"json\">");
    if value.as_object().is_some_and(Map::is_empty) {
        out.push_str("<p class=\"muted\">none</p>");
    } else {
        walk(value, 0, &mut out);
    }
    out.push_str("</div>");
    out
}

fn files_tab(ctx: &Ctx<'_>, v: &ArtifactVersion, href: &str) -> Option<String> {
    let manifest = ctx.store.manifest(v).ok()?;
    let dir = query_value(ctx.query, "dir").unwrap_or_default();
    let dir = if dir.is_empty() || dir.ends_with('/') { dir } else { format!("{dir}/") };
    let after = query_value(ctx.query, "after");
    let files_href = format!("{href}/files");
    let mut out = String::from("<h2>Files</h2>");
    // Where we are: each parent a link.
    let mut trail = vec![link(&files_href, "root")];
    let mut prefix = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        prefix.push_str(part);
        prefix.push('/');
        trail.push(link(&format!("{files_href}?dir={}", segment(&prefix)), part));
    }
    let _ = write!(out, "<p>{}</p>", trail.join(" / "));
    if let Some(path) = query_value(ctx.query, "preview")
        && let Some(entry) = manifest.get(&path)
    {
        out.push_str(&preview(ctx, v, &path, entry));
    }
    let (rows, next) = directory_rows(ctx, v, &manifest, &dir, after.as_deref(), &files_href);
    out.push_str(&table("files", &["name", "size", "digest", ""], &rows));
    if let Some(next) = next {
        let _ = write!(
            out,
            "<p class=\"pager\">{}</p>",
            link(&format!("{files_href}?dir={}&after={}", segment(&dir), segment(&next)), "next files")
        );
    }
    Some(out)
}

/// The children of `dir` (sub-directories first met, then files) after `after`, a page of them, and where the
/// next page starts. A sub-directory costs one lookup past its last entry, not a walk through it.
fn directory_rows(
    ctx: &Ctx<'_>,
    v: &ArtifactVersion,
    manifest: &Manifest,
    dir: &str,
    after: Option<&str>,
    files_href: &str,
) -> (Vec<Vec<String>>, Option<String>) {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = after.map(str::to_owned).or_else(|| (!dir.is_empty()).then(|| dir.to_owned()));
    while rows.len() < FILES_PER_PAGE {
        let Some((path, entry)) = manifest.entries_after(cursor.as_deref()).next() else { return (rows, None) };
        let Some(rest) = path.strip_prefix(dir) else { return (rows, None) };
        if let Some((sub, _)) = rest.split_once('/') {
            let sub_dir = format!("{dir}{sub}/");
            rows.push(vec![
                link(&format!("{files_href}?dir={}", segment(&sub_dir)), &format!("{sub}/")),
                String::new(),
                String::new(),
                String::new(),
            ]);
            // Past everything under sub_dir: '\u{10FFFF}' sorts after any character a path can hold.
            cursor = Some(format!("{sub_dir}\u{10FFFF}"));
            continue;
        }
        let name_cell = link(&format!("{files_href}?dir={}&preview={}", segment(dir), segment(path)), rest);
        let action = match (&entry.reference, ctx.links.download_url(&v.id, path, entry)) {
            (Some(reference), _) if reference.starts_with("http://") || reference.starts_with("https://") => {
                link(reference, "reference")
            }
            (Some(reference), _) => format!("<code>{}</code>", escape(reference)),
            (None, Some(url)) => link(&url, "download"),
            (None, None) => String::new(),
        };
        rows.push(vec![
            name_cell,
            entry.size.map(human_size).unwrap_or_default(),
            format!("<code>{}</code>", escape(&entry.digest)),
            action,
        ]);
        cursor = Some(path.to_owned());
    }
    let more = manifest.entries_after(cursor.as_deref()).next().is_some_and(|(path, _)| path.starts_with(dir));
    (rows, if more { cursor } else { None })
}

fn preview(ctx: &Ctx<'_>, v: &ArtifactVersion, path: &str, entry: &ManifestEntry) -> String {
    let mut out = format!("<h2>{}</h2>", escape(path));
    let lower = path.to_ascii_lowercase();
    let url = ctx.links.download_url(&v.id, path, entry);
    if [".png", ".jpg", ".jpeg", ".gif", ".webp"].iter().any(|e| lower.ends_with(e)) {
        if let Some(url) = url {
            let _ = write!(
                out,
                "<img class=\"preview\" alt=\"{}\" src=\"{}\" style=\"max-width:640px\">",
                escape(path),
                escape(&url)
            );
        }
        return out;
    }
    let is_table = lower.ends_with(".table.json");
    if entry.reference.is_some() || entry.size.is_none_or(|s| s > PREVIEW_BYTES && !is_table) {
        out.push_str("<p class=\"muted\">No preview (a reference, or too big).</p>");
        return out;
    }
    // At most the preview's share of the body is read: a table's first bytes, all of a small text.
    let cap = if is_table { TABLE_PREVIEW_BYTES } else { PREVIEW_BYTES };
    let read = ctx.store.object_path(entry).ok().and_then(|p| std::fs::File::open(p).ok()).and_then(|file| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, cap), &mut bytes).ok().map(|_| bytes)
    });
    let Some(bytes) = read else {
        out.push_str("<p class=\"muted\">The body is not in this store.</p>");
        return out;
    };
    if is_table {
        let whole = entry.size.is_some_and(|size| size <= bytes.len() as u64);
        if let Some(preview) = crate::table::first_rows(&bytes, TABLE_ROWS) {
            out.push_str(&wandb_table(&preview, whole, entry.size.unwrap_or(0)));
            return out;
        }
    }
    // Text: a table this preview cannot read shows its first bytes as text.
    let cut = bytes.len() as u64 > PREVIEW_BYTES || entry.size.is_some_and(|size| size > bytes.len() as u64);
    let mut bytes = bytes;
    bytes.truncate(PREVIEW_BYTES as usize);
    let text = match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        // Cut inside a character: the text before it.
        Err(e) if cut && e.utf8_error().error_len().is_none() => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).ok()
        }
        Err(_) => None,
    };
    match text {
        Some(text) => {
            let _ = write!(out, "<pre class=\"preview\">{}</pre>", escape(&text));
            if cut {
                let _ = write!(
                    out,
                    "<p class=\"muted preview-cut\">The first {} of {}.</p>",
                    human_size(text.len() as u64),
                    human_size(entry.size.unwrap_or(0))
                );
            }
        }
        None => out.push_str("<p class=\"muted\">Binary; download it to look inside.</p>"),
    }
    out
}

/// The first rows of a W&B Table as an HTML table, saying when the table has more than is shown: rows beyond
/// the first [`TABLE_ROWS`], or a file longer than the [`TABLE_PREVIEW_BYTES`] read of it.
fn wandb_table(preview: &crate::table::TablePreview, whole: bool, size: u64) -> String {
    let render = |c: &Value| escape(&c.as_str().map_or_else(|| c.to_string(), str::to_owned));
    let rows: Vec<Vec<String>> = preview.rows.iter().map(|row| row.iter().map(render).collect()).collect();
    let headers: Vec<&str> = preview.columns.iter().map(String::as_str).collect();
    let mut out = table("wandb-table", &headers, &rows);
    let shown = preview.rows.len();
    if !whole && (preview.more || !preview.complete) {
        let _ = write!(
            out,
            "<p class=\"muted preview-cut\">The first {shown} rows; the preview reads only the first {} of this {} \
             table (download it for the rest).</p>",
            human_size(TABLE_PREVIEW_BYTES),
            human_size(size)
        );
    } else if preview.more {
        let total = preview.total.map_or_else(String::new, |t| format!(" of {t}"));
        let _ = write!(out, "<p class=\"muted preview-cut\">The first {shown} rows{total}.</p>");
    }
    out
}

fn node_label(graph: &Graph<'_>, home: &ProjectRef, node: &Node) -> Label {
    let elsewhere = |p: &ProjectRef| if p == home { String::new() } else { format!(" · {p}") };
    match node {
        Node::Run(key) => {
            let run = graph.run(key);
            Label {
                title: run.and_then(|r| r.name.clone()).unwrap_or_else(|| key.id.clone()),
                subtitle: format!(
                    "run · {}{}",
                    run.and_then(|r| r.job_type.clone()).unwrap_or_default(),
                    elsewhere(&key.project)
                ),
                href: Some(run_href(&key.project, &key.id)),
            }
        }
        Node::Artifact(id) => match (graph.location(id), graph.edge(id)) {
            (Some(location), _) => Label {
                title: location.qualified_name(),
                subtitle: format!("{}{}", location.artifact_type, elsewhere(&location.project)),
                href: Some(location_href(location)),
            },
            // No longer in the store: named as the run recorded it.
            (None, Some(edge)) => {
                Label { title: edge.name.clone(), subtitle: format!("{} · gone", edge.artifact_type), href: None }
            }
            (None, None) => Label { title: id.clone(), subtitle: "artifact · gone".to_owned(), href: None },
        },
    }
}

/// The version page of a located version.
fn location_href(location: &wandb_store::VersionLocation) -> String {
    format!(
        "{}/v{}",
        collection_href(&location.project, &location.artifact_type, &location.name),
        location.version_index
    )
}

/// A link to the version an edge names, wherever it lives: where the store's id index says it is now (right for
/// records written before edges carried their project, and after renames), else where the edge says; as text
/// when it is gone, and not named at all when it is in an entity the viewer may not see.
fn edge_link(ctx: &Ctx<'_>, home: &ProjectRef, edge: &wandb_store::ArtifactEdge) -> String {
    const HIDDEN: &str = "<span class=\"muted\">an artifact you may not see</span>";
    match ctx.store.locate_artifact(&edge.id).ok().flatten() {
        Some(location) if ctx.access.allows(location.project.entity()) => {
            let name = location.qualified_name();
            let text = if &location.project == home { name } else { format!("{}/{name}", location.project) };
            link(&location_href(&location), &text)
        }
        Some(_) => HIDDEN.to_owned(),
        None => match edge.project_ref() {
            Some(p) if !ctx.access.allows(p.entity()) => HIDDEN.to_owned(),
            _ => format!("{} <span class=\"muted\">(gone)</span>", escape(&edge.name)),
        },
    }
}

fn depth_choice(ctx: &Ctx<'_>, href: &str) -> (usize, String) {
    let depth =
        query_value(ctx.query, "depth").and_then(|d| d.parse().ok()).unwrap_or(DEFAULT_DEPTH).clamp(1, MAX_DEPTH);
    let choices: Vec<String> = (1..=MAX_DEPTH)
        .map(|d| if d == depth { format!("<b>{d}</b>") } else { link(&format!("{href}?depth={d}"), &d.to_string()) })
        .collect();
    (depth, format!("<p>depth either way: {}</p>", choices.join(" ")))
}

fn lineage_tab(ctx: &Ctx<'_>, p: &ProjectRef, v: &ArtifactVersion, href: &str) -> Option<String> {
    let mut graph = Graph::new(ctx.store, ctx.access);
    let (depth, choices) = depth_choice(ctx, &format!("{href}/lineage"));
    // A version seen through a portfolio or registry collection has its source's id: the source's lineage.
    let centre = Node::Artifact(v.id.clone());
    let svg = graph.svg(&centre, depth, &|graph: &Graph<'_>, n: &Node| {
        let mut label = node_label(graph, p, n);
        if n == &centre {
            label.title = format!("{}:{}", v.name, v.version());
            label.subtitle = v.artifact_type.clone();
        }
        label
    });
    Some(format!("<h2>Lineage</h2>{choices}<div class=\"graph\">{svg}</div>"))
}

fn usage_tab(v: &ArtifactVersion) -> String {
    let path = format!("{}/{}/{}:{}", v.entity, v.project, v.name, v.version());
    format!(
        "<h2>Rust</h2><pre id=\"usage-rust\">{}</pre><h2>Python</h2><pre id=\"usage-python\">{}</pre>\
         <h2>Command line</h2><pre id=\"usage-cli\">{}</pre>",
        escape(&format!(
            "use dagster_wandb::{{Api, RunSettings}};\n\nlet api = Api::from_env()?;\nlet mut run = api.init(RunSettings::new(\"{}\"))?;\nlet artifact = run.use_artifact(\"{path}\")?;\nlet dir = artifact.download()?;\nrun.finish()?;",
            v.project
        )),
        escape(&format!(
            "import wandb\n\nrun = wandb.init(project=\"{}\", entity=\"{}\")\nartifact = run.use_artifact(\"{path}\", type=\"{}\")\nartifact_dir = artifact.download()\nrun.finish()",
            v.project, v.entity, v.artifact_type
        )),
        escape(&format!("dagster-wandb artifact get {path}"))
    )
}

fn run_page(ctx: &Ctx<'_>, entity: &str, project: &str, run_id: &str) -> Option<Page> {
    let p = project_ref(entity, project)?;
    let run = ctx.store.run(&p, run_id).ok()?;
    let status = ctx.store.run_status(&p, run_id).unwrap_or_default();
    let history = ctx.store.run_history(&p, run_id).unwrap_or_default();
    let summary = ctx.store.run_summary(&p, run_id).unwrap_or_default();
    let runtime = summary
        .get("_runtime")
        .or_else(|| history.last().and_then(|r| r.get("_runtime")))
        .and_then(Value::as_f64)
        .map(|s| format!("{s:.1} s"))
        .unwrap_or_default();
    let artifact_link = |edge: &wandb_store::ArtifactEdge| edge_link(ctx, &p, edge);
    let rows = vec![
        vec!["id".to_owned(), escape(&run.id)],
        vec!["name".to_owned(), escape(run.name.as_deref().unwrap_or(""))],
        vec!["job type".to_owned(), escape(run.job_type.as_deref().unwrap_or(""))],
        vec!["state".to_owned(), format!("<span id=\"run-state\">{}</span>", state_name(status.state))],
        vec!["exit code".to_owned(), status.exit_code.map(|c| c.to_string()).unwrap_or_default()],
        vec!["created".to_owned(), escape(&run.created_at)],
        vec!["duration".to_owned(), escape(&runtime)],
        vec!["history".to_owned(), format!("<span id=\"history-rows\">{}</span> rows", history.len())],
        vec!["tags".to_owned(), tags_html(&run.tags)],
        vec!["used".to_owned(), run.inputs.iter().map(artifact_link).collect::<Vec<_>>().join(", ")],
        vec!["logged".to_owned(), run.outputs.iter().map(artifact_link).collect::<Vec<_>>().join(", ")],
    ];
    let mut body =
        format!("<h1>{}</h1>{}", escape(run.name.as_deref().unwrap_or(&run.id)), table("run", &["", ""], &rows));
    let series = chart::series(&history);
    let _ = write!(body, "<h2>Charts</h2>");
    if series.is_empty() {
        body.push_str("<p class=\"muted\">No history logged.</p>");
    }
    for (key, points) in &series {
        body.push_str(&chart::svg(key, points));
    }
    let _ = write!(body, "<h2>Config</h2>{}", json_tree(&Value::Object(status.config.clone())));
    let _ = write!(body, "<h2>Summary</h2>{}", json_tree(&Value::Object(summary)));
    let mut graph = Graph::new(ctx.store, ctx.access);
    let centre = Node::Run(RunKey { project: p.clone(), id: run.id.clone() });
    let svg = graph.svg(&centre, 1, &|graph: &Graph<'_>, n: &Node| node_label(graph, &p, n));
    let _ = write!(body, "<h2>Lineage</h2><div class=\"graph\">{svg}</div>");
    let console = ctx.store.run_stream_lines(&p, run_id, wandb_store::OUTPUT_FILE).unwrap_or_default();
    let start = console.len().saturating_sub(CONSOLE_LINES);
    let _ = write!(
        body,
        "<h2>Console</h2>{}<pre id=\"console\">{}</pre>",
        if start > 0 {
            format!("<p class=\"muted\">the last {CONSOLE_LINES} of {} lines</p>", console.len())
        } else {
            String::new()
        },
        escape(&console[start..].iter().map(|l| console_line(l)).collect::<Vec<_>>().join("\n"))
    );
    let mut crumbs = crumbs_for(&p);
    crumbs.push(("runs".to_owned(), format!("{}/runs", project_href(&p))));
    crumbs.push((run.id.clone(), run_href(&p, &run.id)));
    Some(Page::html(200, ctx.frame(&run.id, &crumbs, &body)))
}

/// A console stream line as W&B stores it (`{"offset", "content"}` JSON or the raw text).
fn console_line(line: &str) -> String {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| v.get("content").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| line.to_owned())
}
