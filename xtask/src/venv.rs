//! Python virtualenvs under `target/`, with pinned packages from PyPI, created once and reused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Result, ensure};

use crate::{project_root, say};

/// The python of the venv in `relative_dir` (under the workspace root), creating it — or rebuilding it when
/// a pinned version differs — with `packages` (`(name, version)`) installed from PyPI.
pub(crate) fn python(relative_dir: &str, packages: &[(&str, &str)]) -> Result<PathBuf> {
    let venv = project_root().join(relative_dir);
    let python = venv.join(if cfg!(windows) { "Scripts/python.exe" } else { "bin/python" });
    // `moto[server]` installs extras; its distribution is `moto`.
    let checks: Vec<String> = packages
        .iter()
        .map(|(name, version)| {
            let distribution = name.split('[').next().unwrap_or(name);
            format!("importlib.metadata.version({distribution:?}) == {version:?}")
        })
        .collect();
    let probe_code = format!("import importlib.metadata, sys; sys.exit(not ({}))", checks.join(" and "));
    let probe = |python: &Path| {
        Command::new(python).args(["-c", &probe_code]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    if probe(&python) {
        return Ok(python);
    }
    let pins: Vec<String> = packages.iter().map(|(name, version)| format!("{name}=={version}")).collect();
    say(&format!("creating {} with {} from PyPI…", venv.display(), pins.join(", ")));
    let _ = std::fs::remove_dir_all(&venv);
    let system_python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    ensure!(Command::new(&system_python).args(["-m", "venv"]).arg(&venv).status()?.success(), "python3 -m venv failed");
    let pip = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .args(&pins)
        .status()?;
    ensure!(pip.success(), "pip install {} failed", pins.join(" "));
    ensure!(probe(&python), "the pinned packages are not importable after installing them");
    Ok(python)
}
