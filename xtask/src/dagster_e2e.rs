//! `cargo xtask dagster-e2e`: the Python companion (`python/`) installed with pip as a user installs it — its
//! declared requirements resolved against pinned `dagster` releases — and tested by its own pytest suite at both
//! ends of its declared range (`target/dagster-e2e/venv` with the newest, `venv-lowest` with the lowest), then the
//! Dagster example materialized by the real `dagster` CLI, its Rust steps speaking Pipes: once on a fresh embedded
//! store, once through `dagster-wandb server`. W&B Launch runs through the example's two jobs, the companion's
//! `run_launch_agent` (terminated as Dagster terminates a run) and `run_launch_job`. Dagster's event log and the
//! stores are checked; failing and panicking Rust steps must show up in Dagster as failed steps with their
//! errors, and a configuration dagster-wandb refuses must fail before its step starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use wandb_store::{EmbeddedStore, ProjectRef, RunState};

use crate::served_store::ServedStore;
use crate::{cargo, project_root, say};

/// The Dagster packages and pytest, pinned (the versions the Pipes spec was observed with): the newest end of the
/// companion's declared range (`python/pyproject.toml`), where the example runs.
const PACKAGES: &[(&str, &str)] = &[("dagster", "1.13.29"), ("dagster-pipes", "1.13.29"), ("pytest", "9.2.0")];
/// The lowest end of the companion's declared range, where its pytest suite runs too.
const LOWEST_PACKAGES: &[(&str, &str)] = &[("dagster", "1.13.0"), ("dagster-pipes", "1.13.0"), ("pytest", "9.2.0")];

const ENTITY: &str = "e2e";
const PROJECT: &str = "dagster-example";
const DAYS: [&str; 3] = ["2024-01-01", "2024-01-02", "2024-01-03"];
/// Custom messages the stress step sends before its materialization (`STRESS_MESSAGES` in e2e_definitions.py).
const STRESS_MESSAGES: u64 = 200_000;
/// The API key of the servers this suite starts.
const KEY: &str = "e2e-launch-key";
/// The W&B run id and name of `custom_run_settings` (`CUSTOM_RUN_ID`, `CUSTOM_RUN_NAME` in e2e_definitions.py).
const CUSTOM_RUN_ID: &str = "e2e-custom-run";
const CUSTOM_RUN_NAME: &str = "e2e custom name";
/// How long a launch through Dagster may take before the suite gives up on it.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(300);

/// The 14 metadata keys every materialization carries, with the type Dagster must have given each.
const METADATA_TYPES: [(&str, &str); 14] = [
    ("dagster_run_id", "DagsterRunMetadataValue"),
    ("wandb_artifact_id", "TextMetadataValue"),
    ("wandb_artifact_type", "TextMetadataValue"),
    ("wandb_artifact_version", "TextMetadataValue"),
    ("wandb_artifact_size", "IntMetadataValue"),
    ("wandb_artifact_url", "UrlMetadataValue"),
    ("wandb_entity", "TextMetadataValue"),
    ("wandb_project", "TextMetadataValue"),
    ("wandb_run_id", "TextMetadataValue"),
    ("wandb_run_name", "TextMetadataValue"),
    ("wandb_run_path", "TextMetadataValue"),
    ("wandb_run_url", "UrlMetadataValue"),
    ("wandb_artifact_digest", "TextMetadataValue"),
    ("wandb_artifact_file_count", "IntMetadataValue"),
];

pub(crate) fn run() -> Result<()> {
    let lowest = crate::venv::python("target/dagster-e2e/venv-lowest", LOWEST_PACKAGES)?;
    install_companion(&lowest, LOWEST_PACKAGES)?;
    pytest(&lowest, LOWEST_PACKAGES)?;
    let python = crate::venv::python("target/dagster-e2e/venv", PACKAGES)?;
    install_companion(&python, PACKAGES)?;
    pytest(&python, PACKAGES)?;
    check_companion_constants(&python)?;
    let dagster = python.with_file_name("dagster");
    let mut build = cargo();
    build.args([
        "build",
        "--quiet",
        "-p",
        "examples",
        "--example",
        "dagster_step",
        "-p",
        "dagster-wandb-cli",
        "--bin",
        "dagster-wandb",
    ]);
    ensure!(build.status()?.success(), "building the dagster_step example and the CLI failed");
    let cli = project_root().join("target/debug/dagster-wandb");

    let work = project_root().join("target/dagster-e2e/run");
    let _ = std::fs::remove_dir_all(&work);
    let store_dir = work.join("store");
    let env = Env::new(&work.join("embedded"), format!("file://{}", store_dir.display()), None)?;
    let definitions = project_root().join("examples/dagster/definitions.py");
    let mut checks = materialize_example(&dagster, &env, &definitions)?;
    say(
        "dagster job execute -j launch_agent, then -j train_on_launch (the companion's run_launch_agent and run_launch_job ops, through dagster-wandb server)",
    );
    launch_through_dagster(&python, &dagster, &env, &definitions, &store_dir, &cli)?;
    let e2e_definitions = project_root().join("xtask/dagster/e2e_definitions.py");
    say("dagster asset materialize --select failing_step (must fail)");
    materialize(&dagster, &env, &e2e_definitions, &["--select", "failing_step"], false)?;
    say("dagster asset materialize --select panicking_step (must fail)");
    materialize(&dagster, &env, &e2e_definitions, &["--select", "panicking_step"], false)?;
    say("dagster asset materialize --select refused_configuration (must fail before its step starts)");
    let marker = work.join("refused-step-ran");
    let mut refused = env.clone();
    refused.extra.push(("DAGSTER_WANDB_E2E_MARKER".to_owned(), marker.display().to_string()));
    materialize(&dagster, &refused, &e2e_definitions, &["--select", "refused_configuration"], false)?;
    ensure!(!marker.exists(), "the step of refused_configuration ran although its configuration is invalid");
    say(&format!("dagster asset materialize --select pipes_stress ({STRESS_MESSAGES} messages)"));
    materialize(&dagster, &env, &e2e_definitions, &["--select", "pipes_stress"], true)?;
    say("dagster asset materialize --select custom_run_settings (the resource's run_id, run_name, run_tags, base_dir)");
    // The resource's cache_duration_in_minutes is 0: the step's sweep of its base_dir removes every file there.
    let base_dir = work.join("custom-base-dir");
    let stale = base_dir.join("storage/wandb_artifacts_manager/stale.txt");
    std::fs::create_dir_all(stale.parent().context("a parent")?)?;
    std::fs::write(&stale, "swept by the step that uses this base_dir\n")?;
    let mut custom = env.clone();
    custom.extra.push(("DAGSTER_WANDB_E2E_BASE_DIR".to_owned(), base_dir.display().to_string()));
    materialize(&dagster, &custom, &e2e_definitions, &["--select", "custom_run_settings"], true)?;
    ensure!(!stale.exists(), "{} is still there: the step did not sweep the resource's base_dir", stale.display());

    let events = event_log(&python, &env)?;
    let store = EmbeddedStore::open(&store_dir)?;
    let project = ProjectRef::new(ENTITY, PROJECT)?;
    checks += check_materializations(&events, &store, &project, &env.store_url)?;
    checks += check_stress(&events)?;
    checks += check_launch(&events, &store, &project)?;
    checks += check_custom_run_settings(&events, &store, &project)?;
    checks += check_lineage(&store, &project)?;
    checks += check_failure(&events)?;

    say("the same definitions through dagster-wandb server");
    let served_dir = work.join("served-store");
    let server = ServedStore::start(&cli, &served_dir, &["--api-key", KEY], Stdio::null())?;
    let served = Env::new(&work.join("served"), server.url.clone(), Some(KEY))?;
    checks += materialize_example(&dagster, &served, &definitions)?;
    let events = event_log(&python, &served)?;
    drop(server);
    let store = EmbeddedStore::open(&served_dir)?;
    checks += check_materializations(&events, &store, &project, &served.store_url)?;
    checks += check_lineage(&store, &project)?;
    say(&format!("dagster-e2e: ok ({checks} checks)"));
    Ok(())
}

/// `pip install ./python` into the venv, every time (it is small, and must be the checkout's), as a user installs
/// it: pip resolves the declared requirements, with the venv's pins as constraints, so a declared range that
/// excludes a pinned release fails here instead of replacing it; then `pip check`.
fn install_companion(python: &Path, pins: &[(&str, &str)]) -> Result<()> {
    let venv = python.parent().and_then(Path::parent).context("the venv of a python")?;
    let constraints = venv.join("constraints.txt");
    std::fs::write(
        &constraints,
        pins.iter().map(|(name, version)| format!("{name}=={version}\n")).collect::<String>(),
    )?;
    let out = Command::new(python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--constraint"])
        .arg(&constraints)
        .arg(project_root().join("python"))
        .output()?;
    ensure!(
        out.status.success(),
        "pip install ./python against {} failed:\n{}",
        pinned(pins),
        String::from_utf8_lossy(&out.stderr)
    );
    let check = Command::new(python).args(["-m", "pip", "check", "--disable-pip-version-check"]).output()?;
    ensure!(check.status.success(), "pip check after installing ./python:\n{}", String::from_utf8_lossy(&check.stdout));
    Ok(())
}

/// The companion's own pytest suite, in the venv of `python` (with `pins`).
fn pytest(python: &Path, pins: &[(&str, &str)]) -> Result<()> {
    say(&format!("pytest python/tests ({})", pinned(pins)));
    let pytest = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", "python/tests"])
        .current_dir(project_root())
        .status()?;
    ensure!(pytest.success(), "the companion's pytest suite failed with {}", pinned(pins));
    Ok(())
}

fn pinned(pins: &[(&str, &str)]) -> String {
    pins.iter().map(|(name, version)| format!("{name} {version}")).collect::<Vec<_>>().join(", ")
}

/// The companion checks configurations before a step starts with the same key lists, modules and launch
/// refusals as `dagster_bridge::config`, `dagster_bridge::launch` and `serde_modules`: one list each, compared here
/// so they cannot drift apart.
fn check_companion_constants(python: &Path) -> Result<()> {
    let code = "import json; from dagster_wandb_rust import configuration as c, launch as l, resource as r; \
                print(json.dumps([list(c.WRITE_CONFIGURATION_KEYS), list(c.READ_CONFIGURATION_KEYS), \
                list(c.PARTITION_CONFIGURATION_KEYS), list(c.SERIALIZATION_MODULES), c.ARTIFACT_CONFIGURATION_KEY, \
                list(r.IO_MANAGER_CONFIGURATION_KEYS), [list(k) for k in l.REFUSED_LAUNCH_JOB_KEYS.items()], \
                l.QUEUE_REQUIRED]))";
    let out = Command::new(python).args(["-c", code]).output()?;
    ensure!(out.status.success(), "cannot read the companion's constants: {}", String::from_utf8_lossy(&out.stderr));
    let python_side: Value = serde_json::from_slice(&out.stdout)?;
    let modules: Vec<&str> = serde_modules::Module::ALL.iter().map(|m| m.name()).collect();
    let rust_side = serde_json::json!([
        dagster_bridge::config::WRITE_CONFIGURATION_KEYS,
        dagster_bridge::config::READ_CONFIGURATION_KEYS,
        dagster_bridge::config::PARTITION_CONFIGURATION_KEYS,
        modules,
        dagster_bridge::config::ARTIFACT_CONFIGURATION_KEY,
        dagster_bridge::config::IO_MANAGER_CONFIGURATION_KEYS,
        dagster_bridge::launch::REFUSED_LAUNCH_JOB_KEYS,
        dagster_bridge::launch::QUEUE_REQUIRED,
    ]);
    ensure!(
        python_side == rust_side,
        "the companion's key lists {python_side} differ from the Rust side's {rust_side}"
    );
    Ok(())
}

/// The example's artifact assets: `group:wandb_example`, each day of `daily_readings`, then `readings_summary`.
fn materialize_example(dagster: &Path, env: &Env, definitions: &Path) -> Result<usize> {
    say(&format!("[{}] dagster asset materialize --select group:wandb_example", env.store_url));
    materialize(dagster, env, definitions, &["--select", "group:wandb_example"], true)?;
    for day in DAYS {
        say(&format!("[{}] dagster asset materialize --select daily_readings --partition {day}", env.store_url));
        materialize(dagster, env, definitions, &["--select", "daily_readings", "--partition", day], true)?;
    }
    say(&format!("[{}] dagster asset materialize --select readings_summary", env.store_url));
    materialize(dagster, env, definitions, &["--select", "readings_summary"], true)?;
    Ok(5)
}

/// Where one pass runs: its Dagster instance, its store and cache, and the environment the definitions read.
#[derive(Clone)]
struct Env {
    home: PathBuf,
    store_url: String,
    cache: PathBuf,
    step: PathBuf,
    /// Further variables (the API key of a server, markers).
    extra: Vec<(String, String)>,
}

impl Env {
    fn new(work: &Path, store_url: String, api_key: Option<&str>) -> Result<Self> {
        let home = work.join("dagster_home");
        std::fs::create_dir_all(&home)?;
        // An empty dagster.yaml: the default (SQLite) storage in DAGSTER_HOME, without Dagster's notice about it.
        std::fs::write(home.join("dagster.yaml"), "")?;
        let extra = api_key.map(|k| vec![("WANDB_API_KEY".to_owned(), k.to_owned())]).unwrap_or_default();
        Ok(Env {
            home,
            store_url,
            cache: work.join("wandb-cache"),
            step: project_root().join("target/debug/examples/dagster_step"),
            extra,
        })
    }

    /// `command` with this pass's environment.
    fn apply<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        command
            .env("DAGSTER_HOME", &self.home)
            .env("WANDB_BASE_URL", &self.store_url)
            .env("WANDB_CACHE_DIR", &self.cache)
            .env("WANDB_ENTITY", ENTITY)
            .env("WANDB_PROJECT", PROJECT)
            .env("DAGSTER_WANDB_STEP_BIN", &self.step)
            .env("DAGSTER_WANDB_BIN", project_root().join("target/debug/dagster-wandb"))
            .env("PYTHONWARNINGS", "ignore")
            .env_remove("WANDB_API_KEY")
            .envs(self.extra.iter().map(|(k, v)| (k, v)))
            .current_dir(project_root())
    }
}

fn materialize(dagster: &Path, env: &Env, definitions: &Path, args: &[&str], must_succeed: bool) -> Result<()> {
    let out = env
        .apply(Command::new(dagster).args(["asset", "materialize", "-f"]).arg(definitions).args(args))
        .output()
        .context("cannot run dagster")?;
    let log = String::from_utf8_lossy(&out.stderr);
    match (must_succeed, out.status.success()) {
        (true, false) => bail!("dagster asset materialize {} failed:\n{log}", args.join(" ")),
        (false, true) => {
            bail!("dagster asset materialize {} succeeded, but its step should have failed", args.join(" "))
        }
        _ => Ok(()),
    }
}

/// What the pass's Dagster instance recorded (`event_log.py`).
fn event_log(python: &Path, env: &Env) -> Result<Value> {
    let mut log = Command::new(python);
    log.arg(project_root().join("xtask/dagster/event_log.py")).env("DAGSTER_HOME", &env.home);
    let out = log.output().context("cannot run event_log.py")?;
    ensure!(out.status.success(), "event_log.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).context("event_log.py printed no JSON")
}

/// Every artifact asset materialized once per partition with the 14 W&B keys, typed; URLs, run ids and digests
/// agree with the store.
fn check_materializations(
    events: &Value,
    store: &EmbeddedStore,
    project: &ProjectRef,
    store_url: &str,
) -> Result<usize> {
    let materializations = events["materializations"].as_array().context("no materializations")?;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut checks = 0;
    for m in materializations {
        let asset = m["asset"].as_str().unwrap_or_default();
        if asset == "pipes_stress" || asset == "custom_run_settings" {
            // Checked by check_stress and check_custom_run_settings.
            continue;
        }
        let partition = m["partition"].as_str();
        *seen.entry(asset.to_owned()).or_default() += 1;
        let metadata = &m["metadata"];
        for (key, expected_type) in METADATA_TYPES {
            let actual = metadata[key]["type"].as_str().unwrap_or("missing");
            ensure!(actual == expected_type, "{asset}: metadata {key} is {actual}, expected {expected_type}");
            checks += 1;
        }
        let text = |key: &str| metadata[key]["value"].as_str().unwrap_or_default().to_owned();
        let run_id = m["run_id"].as_str().unwrap_or_default();
        ensure!(text("dagster_run_id") == run_id, "{asset}: dagster_run_id is not the run's id");
        ensure!(text("wandb_run_id") == run_id, "{asset}: the W&B run is not the Dagster run");
        ensure!(text("wandb_run_name") == format!("dagster-run-{}", &run_id[..8]), "{asset}: run name");
        let name = match partition {
            Some(day) => format!("{asset}.{day}"),
            None => asset.to_owned(),
        };
        let version = store.artifact(project, &name, &text("wandb_artifact_version"))?;
        ensure!(version.id == text("wandb_artifact_id"), "{asset}: artifact id differs from the store's");
        ensure!(version.digest == text("wandb_artifact_digest"), "{asset}: digest differs from the store's");
        ensure!(
            m["tags"]["dagster/data_version"].as_str() == Some(version.digest.as_str()),
            "{asset}: the data version is not the artifact digest"
        );
        ensure!(metadata["wandb_artifact_size"]["value"].as_u64() == Some(version.size), "{asset}: size");
        let url =
            format!("{store_url}/{ENTITY}/{PROJECT}/artifacts/{}/{name}/{}", version.artifact_type, version.version());
        ensure!(text("wandb_artifact_url") == url, "{asset}: artifact URL {} is not {url}", text("wandb_artifact_url"));
        ensure!(
            version.created_by.as_deref() == Some(run_id),
            "{asset}: the version was not logged by the Dagster run"
        );
        ensure!(version.aliases.contains(&format!("dagster-run-{}", &run_id[..8])), "{asset}: no run alias");
        checks += 8;
    }
    let expected = [("daily_readings", 3), ("number_stats", 1), ("raw_numbers", 1), ("readings_summary", 1)];
    let expected: BTreeMap<String, usize> = expected.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    ensure!(seen == expected, "materializations {seen:?}, expected {expected:?}");
    let checks_passed = events["checks"].as_array().is_some_and(|c| {
        c.iter().any(|c| c["asset"] == "number_stats" && c["check"] == "has_rows" && c["passed"] == true)
    });
    ensure!(checks_passed, "the has_rows check of number_stats did not pass: {}", events["checks"]);
    Ok(checks + 1)
}

/// Dagster received every one of the stress step's messages, in order.
fn check_stress(events: &Value) -> Result<usize> {
    let materializations = events["materializations"].as_array().context("no materializations")?;
    let stress = materializations.iter().find(|m| m["asset"] == "pipes_stress").context("no pipes_stress")?;
    let received = stress["metadata"]["custom_messages_received"]["value"].as_u64();
    ensure!(received == Some(STRESS_MESSAGES), "Dagster received {received:?} of {STRESS_MESSAGES} messages");
    ensure!(stress["metadata"]["custom_messages_in_order"]["value"] == true, "messages arrived out of order");
    Ok(2)
}

/// The one run of `job` in the event log.
fn run_of<'a>(events: &'a Value, job: &str) -> Result<&'a Value> {
    let runs: Vec<&Value> = events["runs"].as_array().context("no runs")?.iter().filter(|r| r["job"] == job).collect();
    match runs.as_slice() {
        [run] => Ok(run),
        _ => bail!("expected one run of {job}, found {}", runs.len()),
    }
}

/// Whether the run logged a line starting with `prefix`, and which.
fn logged<'a>(run: &'a Value, prefix: &str) -> Option<&'a str> {
    run["logs"].as_array()?.iter().filter_map(Value::as_str).find(|line| line.starts_with(prefix))
}

/// The launch through Dagster: `train_on_launch` succeeded, logging dagster-wandb's lines and the launched run,
/// which the store holds, finished, with its three epochs; `launch_agent` was terminated (CANCELED) and its agent
/// reported, as it stopped, that it ran that one job.
fn check_launch(events: &Value, store: &EmbeddedStore, project: &ProjectRef) -> Result<usize> {
    let train = run_of(events, "train_on_launch")?;
    ensure!(train["status"] == "SUCCESS", "train_on_launch ended {}: {train}", train["status"]);
    let configuration = format!("Launch job configuration: {{'entity': '{ENTITY}', 'project': '{PROJECT}', ");
    ensure!(logged(train, &configuration).is_some(), "train_on_launch did not log {configuration:?}: {train}");
    let queued = "Synchronous Launch job added to queue with name=default. Waiting for completion...";
    ensure!(logged(train, queued).is_some(), "train_on_launch did not log {queued:?}: {train}");
    let finished = logged(train, "launched run ").context("train_on_launch logged no launched run")?;
    let run_id = finished
        .strip_prefix("launched run ")
        .and_then(|rest| rest.strip_suffix(" finished"))
        .with_context(|| format!("unexpected line {finished:?}"))?;
    let state = store.run_status(project, run_id)?.state;
    ensure!(state == RunState::Finished, "the launched run {run_id} is {state:?}");
    let steps: Vec<u64> =
        store.run_history(project, run_id)?.iter().filter_map(|r| r.get("_step").and_then(Value::as_u64)).collect();
    ensure!(steps == [0, 1, 2], "the launched run's history steps {steps:?}");

    let agent = run_of(events, "launch_agent")?;
    ensure!(agent["status"] == "CANCELED", "launch_agent ended {}, expected CANCELED: {agent}", agent["status"]);
    let configuration = format!(
        "Launch agent configuration: {{'entity': '{ENTITY}', 'project': '{PROJECT}', 'queues': ['default'], 'max_jobs': 1}}"
    );
    ensure!(logged(agent, &configuration).is_some(), "launch_agent did not log {configuration:?}: {agent}");
    ensure!(logged(agent, "Running Launch agent...").is_some(), "launch_agent did not log that it runs: {agent}");
    let report = "launch agent stopped: 1 succeeded, 0 failed, 0 stopped";
    ensure!(logged(agent, report).is_some(), "launch_agent did not report {report:?}: {agent}");
    Ok(9)
}

/// `custom_run_settings`: the W&B run is the resource's `run_id`, named `run_name` and tagged `run_tags` (then
/// `dagster_wandb`), while the version keeps the Dagster run's alias and id.
fn check_custom_run_settings(events: &Value, store: &EmbeddedStore, project: &ProjectRef) -> Result<usize> {
    let materializations = events["materializations"].as_array().context("no materializations")?;
    let custom =
        materializations.iter().find(|m| m["asset"] == "custom_run_settings").context("no custom_run_settings")?;
    let metadata = &custom["metadata"];
    let text = |key: &str| metadata[key]["value"].as_str().unwrap_or_default().to_owned();
    let dagster_run_id = custom["run_id"].as_str().unwrap_or_default();
    ensure!(text("wandb_run_id") == CUSTOM_RUN_ID, "custom_run_settings: wandb_run_id {}", text("wandb_run_id"));
    ensure!(text("wandb_run_name") == CUSTOM_RUN_NAME, "custom_run_settings: run name {}", text("wandb_run_name"));
    ensure!(text("wandb_run_path") == format!("{ENTITY}/{PROJECT}/{CUSTOM_RUN_ID}"), "custom_run_settings: run path");
    ensure!(text("dagster_run_id") == dagster_run_id, "custom_run_settings: dagster_run_id");
    let version = store.artifact(project, "custom_run_settings", &text("wandb_artifact_version"))?;
    ensure!(
        version.created_by.as_deref() == Some(CUSTOM_RUN_ID),
        "custom_run_settings: logged by {:?}",
        version.created_by
    );
    let alias = format!("dagster-run-{}", &dagster_run_id[..8]);
    ensure!(version.aliases.contains(&alias), "custom_run_settings: no alias {alias} in {:?}", version.aliases);
    let run = store.run(project, CUSTOM_RUN_ID)?;
    ensure!(run.name.as_deref() == Some(CUSTOM_RUN_NAME), "custom run name {:?}", run.name);
    ensure!(run.tags == ["e2e", "dagster_wandb"], "custom run tags {:?}", run.tags);
    Ok(8)
}

/// The store holds the artifacts with their lineage: each reader's run used what the writer's run logged.
fn check_lineage(store: &EmbeddedStore, project: &ProjectRef) -> Result<usize> {
    let raw = store.artifact(project, "raw_numbers", "example")?;
    let stats = store.artifact(project, "number_stats", "latest")?;
    ensure!(raw.artifact_type == "dataset" && stats.artifact_type == "statistics", "artifact types");
    ensure!(raw.description.as_deref() == Some("Numbers and their squares"), "raw_numbers description");
    let used_by: Vec<String> = store.lineage(&raw)?.used_by.into_iter().map(|r| r.id).collect();
    ensure!(used_by == [stats.created_by.clone().unwrap_or_default()], "raw_numbers used by {used_by:?}");
    let run = store.run(project, raw.created_by.as_deref().unwrap_or_default())?;
    ensure!(run.tags == ["dagster_wandb"], "run tags {:?}", run.tags);
    // number_stats logged one metric row per number to the same run.
    let history = store.run_history(project, &run.id)?;
    let steps: Vec<u64> = history.iter().filter_map(|r| r.get("_step").and_then(Value::as_u64)).collect();
    ensure!(steps == (0..10).collect::<Vec<u64>>(), "run history steps {steps:?}");
    ensure!(history[9].get("running_mean").and_then(Value::as_f64) == Some(38.5), "running_mean {:?}", history[9]);

    let summary = store.artifact(project, "readings_summary", "latest")?;
    let summary_run = summary.created_by.clone().unwrap_or_default();
    for day in DAYS {
        let daily = store.artifact(project, &format!("daily_readings.{day}"), "latest")?;
        let used_by: Vec<String> = store.lineage(&daily)?.used_by.into_iter().map(|r| r.id).collect();
        ensure!(used_by == [summary_run.clone()], "daily_readings.{day} used by {used_by:?}");
    }
    // The summary is a pickled dict of each day's maximum, as Python's pickle.load reads it.
    let manifest = store.manifest(&summary)?;
    let entry = manifest.get("output.pickle").context("the summary has no output.pickle")?;
    let bytes = std::fs::read(store.object_path(entry)?)?;
    let maxima: BTreeMap<String, f64> = serde_modules::Module::Pickle.decode(&bytes)?;
    ensure!(maxima.keys().map(String::as_str).eq(DAYS), "summary keys {:?}", maxima.keys());
    Ok(9)
}

/// The failing and panicking steps are failed steps in Dagster, and their Rust errors (with causes) and the
/// panic's message reached Dagster.
fn check_failure(events: &Value) -> Result<usize> {
    let runs = events["runs"].as_array().context("no runs")?;
    let failed: Vec<&Value> = runs.iter().filter(|r| r["status"] == "FAILURE").collect();
    ensure!(failed.len() == 3, "expected exactly three failed runs, found {}", failed.len());
    let failed_step = |step: &str, check: &dyn Fn(&[&str]) -> bool| -> Result<()> {
        let run = failed
            .iter()
            .find(|r| r["failures"].as_array().is_some_and(|f| f.iter().any(|f| f["step"] == step)))
            .with_context(|| format!("no STEP_FAILURE for {step}"))?;
        let pipes_errors = run["pipes_errors"].as_array().context("no pipes errors")?;
        let reported = pipes_errors.iter().any(|e| {
            let chain: Vec<&str> = e["errors"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            e["step"] == step && check(&chain)
        });
        ensure!(reported, "the error of {step} did not reach Dagster: {run}");
        Ok(())
    };
    failed_step("failing_step", &|chain| {
        chain.first().is_some_and(|m| m.starts_with("The artifact you're attempting to download might not exist"))
            && chain.iter().any(|m| m.contains("never_materialized:latest"))
    })?;
    failed_step("panicking_step", &|chain| chain.iter().any(|m| m.contains("the model diverged at epoch 3")))?;
    // Refused in Python with dagster-wandb's message, before any Rust step (so no Pipes session either).
    let refused = failed
        .iter()
        .flat_map(|r| r["failures"].as_array().into_iter().flatten())
        .find(|f| f["step"] == "refused_configuration")
        .context("no STEP_FAILURE for refused_configuration")?;
    let chain = refused["errors"].to_string();
    ensure!(
        chain.contains("The configuration keys '['alias']' you are trying to use are not supported within the 'wandb_artifact_configuration' metadata dictionary when writing an Artifact."),
        "refused_configuration failed with {chain}"
    );
    // group:wandb_example, 3 days of daily_readings, readings_summary, train_on_launch, pipes_stress and
    // custom_run_settings; launch_agent is CANCELED (check_launch).
    let ok_runs = runs.iter().filter(|r| r["status"] == "SUCCESS").count();
    ensure!(ok_runs == 8, "expected 8 successful runs, found {ok_runs}");
    ensure!(runs.len() == 12, "expected 12 runs (8 successful, 3 failed, 1 canceled), found {}", runs.len());
    Ok(7)
}

/// W&B Launch from Dagster, with the example's jobs on the companion's ops: `dagster-wandb server` serves the
/// store; the training job (the example's `train`) is created with `launch create-job`. The job `launch_agent`
/// (`run_launch_agent`) runs in the background while the job `train_on_launch` (`run_launch_job`, synchronous)
/// pushes the training job to the `default` queue and waits for its run; then the agent's run is terminated as
/// Dagster terminates a run (`terminate_run.py`), which stops the agent.
fn launch_through_dagster(
    python: &Path,
    dagster: &Path,
    env: &Env,
    definitions: &Path,
    store_dir: &Path,
    cli: &Path,
) -> Result<()> {
    let server = ServedStore::start(cli, store_dir, &["--api-key", KEY], Stdio::null())?;
    let work = env.home.parent().context("a work dir")?;
    let code = work.join("train-job");
    std::fs::create_dir_all(&code)?;
    std::fs::write(code.join("README.md"), "The training job is the dagster_step example's `train`.\n")?;
    let mut create = Command::new(cli);
    create
        .args(["launch", "create-job"])
        .arg(&code)
        .args(["--name", "train-job", "--entry-point"])
        .arg(&env.step)
        .args(["--entry-point", "train"])
        .env("WANDB_BASE_URL", &server.url)
        .env("WANDB_API_KEY", KEY)
        .env("WANDB_ENTITY", ENTITY)
        .env("WANDB_PROJECT", PROJECT)
        .env("WANDB_CACHE_DIR", &env.cache);
    let out = create.output()?;
    ensure!(out.status.success(), "launch create-job failed: {}", String::from_utf8_lossy(&out.stderr));
    let job = String::from_utf8(out.stdout)?.trim().to_owned();
    let job_latest = job.split(':').next().map(|j| format!("{j}:latest")).unwrap_or_default();

    let mut launch = env.clone();
    launch.extra.extend([
        ("WANDB_API_KEY".to_owned(), KEY.to_owned()),
        ("DAGSTER_WANDB_LAUNCH_URL".to_owned(), server.url.clone()),
    ]);
    let agent_config = env.home.join("launch_agent.yaml");
    std::fs::write(&agent_config, "ops:\n  agent:\n    config:\n      queues: [default]\n      max_jobs: 1\n")?;
    let agent_log = work.join("launch_agent.log");
    let mut agent = launch
        .apply(Command::new(dagster).args(["job", "execute", "-f"]).arg(definitions))
        .args(["-j", "launch_agent", "-c"])
        .arg(&agent_config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&agent_log)?)
        .spawn()
        .context("cannot run dagster")?;
    let train_config = env.home.join("train_on_launch.yaml");
    std::fs::write(
        &train_config,
        format!(
            "ops:\n  train:\n    config:\n      job: {job_latest}\n      queue: default\n      resource: local-process\n      \
             config: {{overrides: {{run_config: {{epochs: 3}}}}}}\n"
        ),
    )?;
    let train_log = work.join("train_on_launch.log");
    let mut train = launch
        .apply(Command::new(dagster).args(["job", "execute", "-f"]).arg(definitions))
        .args(["-j", "train_on_launch", "-c"])
        .arg(&train_config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&train_log)?)
        .spawn()
        .context("cannot run dagster")?;
    // The launch waits for the agent: it must end while the agent runs, and within the time allowed.
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    let trained = loop {
        if let Some(status) = train.try_wait()? {
            break status;
        }
        let agent_ended = agent.try_wait()?;
        if agent_ended.is_some() || Instant::now() > deadline {
            interrupt(&mut train);
            interrupt(&mut agent);
            bail!(
                "train_on_launch did not end {}:\n{}\nlaunch_agent:\n{}",
                if agent_ended.is_some() { "before launch_agent did" } else { "in time" },
                log_tail(&train_log),
                log_tail(&agent_log)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if !trained.success() {
        interrupt(&mut agent);
        bail!("dagster job execute -j train_on_launch failed:\n{}", log_tail(&train_log));
    }
    let mut terminate = Command::new(python);
    terminate
        .arg(project_root().join("xtask/dagster/terminate_run.py"))
        .args(["launch_agent", &agent.id().to_string()])
        .env("DAGSTER_HOME", &env.home);
    let terminated = terminate.output()?;
    if !terminated.status.success() {
        interrupt(&mut agent);
        bail!("terminate_run.py failed: {}", String::from_utf8_lossy(&terminated.stderr));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while agent.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = agent.kill();
            bail!("launch_agent did not stop when its run was terminated:\n{}", log_tail(&agent_log));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(server);
    Ok(())
}

/// Interrupts a `dagster` process as Ctrl-C does (it stops its steps, and they their Pipes processes), then kills
/// it if it is still there after 30 s.
fn interrupt(child: &mut Child) {
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last 60 lines of a log file.
fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}
