//! Workspace conventions, checked by `cargo xtask tidy` and by `cargo test` (the tests below).

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// Returns one line per problem; empty when the workspace is tidy.
pub(crate) fn check(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let architecture = fs::read_to_string(root.join("ARCHITECTURE.md")).context("reading ARCHITECTURE.md")?;
    let workspace_manifest = fs::read_to_string(root.join("Cargo.toml"))?;
    if !architecture.contains("**Architecture Invariant:**") {
        problems.push("ARCHITECTURE.md states no invariant".to_owned());
    }
    let mut members = vec![root.join("xtask"), root.join("examples")];
    for entry in fs::read_dir(root.join("crates"))? {
        let dir = entry?.path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !architecture.contains(&format!("### `crates/{name}`")) {
            problems.push(format!("ARCHITECTURE.md has no `### `crates/{name}`` section"));
        }
        if !dir.join("README.md").exists() {
            problems.push(format!("crates/{name} has no README.md"));
        }
        // A library documents itself with a runnable example; a binary-only package (the CLI) with its docs.
        match fs::read_to_string(dir.join("src/lib.rs")) {
            Ok(lib) if !lib.contains("# Example") => {
                problems.push(format!("crates/{name}/src/lib.rs has no `# Example` section"));
            }
            Ok(_) => {}
            Err(_) if dir.join("src/main.rs").exists() => {}
            Err(_) => problems.push(format!("crates/{name} has neither src/lib.rs nor src/main.rs")),
        }
        let lines = source_lines(&dir.join("src"))?;
        if lines > MAX_CRATE_LINES {
            problems.push(format!(
                "crates/{name} has {lines} lines of code, over {MAX_CRATE_LINES}: split what does not belong together"
            ));
        }
        members.push(dir);
    }
    for dir in members {
        let manifest =
            fs::read_to_string(dir.join("Cargo.toml")).with_context(|| format!("reading {}", dir.display()))?;
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !manifest.contains("[lints]\nworkspace = true") {
            problems.push(format!("{name}/Cargo.toml does not inherit [workspace.lints]"));
        }
        // Every dependency listed in [workspace.dependencies] must be inherited, not re-versioned.
        for line in manifest.lines() {
            let Some((dep, rest)) = line.split_once('=') else { continue };
            let dep = dep.trim().trim_end_matches(".workspace");
            let versioned = rest.trim_start().starts_with('"') || rest.contains("version =");
            if versioned && workspace_manifest.contains(&format!("\n{dep} = ")) && !matches!(dep, "version" | "name") {
                problems.push(format!("{name}/Cargo.toml gives {dep} its own version; use {dep}.workspace = true"));
            }
        }
    }
    let facade = fs::read_to_string(root.join("crates/dagster-wandb/src/lib.rs"))?;
    if facade.lines().any(|l| !l.trim_start().starts_with("//") && (l.contains("fn ") || l.contains("impl "))) {
        problems.push("crates/dagster-wandb/src/lib.rs must only re-export (it defines a function or impl)".to_owned());
    }
    problems.extend(check_vectors(root)?);
    Ok(problems)
}

/// The most lines of code a crate may have: past this, it holds things that do not belong together. Docs, comments,
/// blank lines and inline test modules do not count: documenting every public item must never push a crate apart.
/// The largest crate by design is `wandb-api`, the W&B client and the backend abstraction in one (the project's
/// crate plan); when it outgrows this, the client is the part to split off, not a module.
const MAX_CRATE_LINES: usize = 6000;

/// Lines of Rust code under `dir`: not blank, not a comment, and before a file's top-level `#[cfg(test)]` module.
fn source_lines(dir: &Path) -> Result<usize> {
    let mut lines = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                lines += fs::read_to_string(&path)?
                    .lines()
                    .take_while(|l| *l != "#[cfg(test)]")
                    .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
                    .count();
            }
        }
    }
    Ok(lines)
}

/// The vendored SDK vectors must stay byte-identical to the shared originals when those are present.
fn check_vectors(root: &Path) -> Result<Vec<String>> {
    let shared = root.join("../shared/vectors");
    let ours = root.join("testdata/wandb-0.31.0");
    let mut problems = Vec::new();
    if !shared.is_dir() {
        return Ok(problems);
    }
    let mut stack = vec![ours.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(&ours)?;
            let original = shared.join(relative);
            if fs::read(&original).ok() != Some(fs::read(&path)?) {
                problems.push(format!("testdata/wandb-0.31.0/{} differs from shared/vectors", relative.display()));
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    #[test]
    fn workspace_is_tidy() {
        let problems = super::check(&crate::project_root()).unwrap();
        assert!(problems.is_empty(), "tidy problems:\n{}", problems.join("\n"));
    }
}
