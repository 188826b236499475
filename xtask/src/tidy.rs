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
        for required in ["README.md", "src/lib.rs"] {
            if !dir.join(required).exists() {
                problems.push(format!("crates/{name} has no {required}"));
            }
        }
        let lib = fs::read_to_string(dir.join("src/lib.rs")).unwrap_or_default();
        if !lib.contains("# Example") {
            problems.push(format!("crates/{name}/src/lib.rs has no `# Example` section"));
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
    problems.extend(check_vectors(root)?);
    Ok(problems)
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
