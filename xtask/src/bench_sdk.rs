//! `cargo xtask bench sdk`: our release CLI and the real `wandb` 0.31.0 side by side, through one
//! `dagster-wandb server` on loopback, in one run, alternating, fresh artifact names and contents each round.
//!
//! Per shape and round, each side: logs a directory (`artifact put`; `run.log_artifact` + `wait`, with a cache
//! of its own, since the SDK caches what it logs), downloads it cold (empty cache, empty root), warm (its cache, empty root) and again into the populated root; `cp -r` of
//! the same tree is timed beside them as the filesystem's floor. Each timed step starts after a `sync`, so that
//! it pays for its own writes, not for writing back the previous step's. Shapes by default: 10,000 × 4 KiB,
//! 100,000 × 1 KiB and one 1 GiB file (`--shape FILESxBYTES` to choose). Reported: min–max seconds over the
//! rounds, ours/Python, and each side's peak RSS. `--latency-ms` makes the server delay every file download, as a
//! distant object store. `--check` fails, naming each miss, unless the median rounds meet the transfer issue's
//! targets (the slowest are printed beside them): every step at most Python's time; a cold download of 10,000 files or more at most 0.1 of Python's
//! (0.2 with 20 ms or more of latency); a warm download of a big file within 1.5× of `cp` of the cache object it copied (timed right after it); our peak RSS at most
//! 64 MiB on big-file shapes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use crate::bench::XorShift;
use crate::bench_transfer::measure;
use crate::served_store::ServedStore;
use crate::{project_root, say};

const KEY: &str = "benchsdk0123456789abcdef0123456789abcdef";
const STEPS: [&str; 4] = ["log", "cold download", "warm download", "into populated root"];

/// A shape: how many files of what size.
#[derive(Clone, Copy)]
struct Shape {
    files: usize,
    size: usize,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} × {} B", self.files, self.size)
    }
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let usage = "usage: cargo xtask bench sdk [--check] [--rounds N] [--latency-ms MS] [--shape FILESxBYTES]...";
    let (mut check, mut rounds, mut shapes, mut latency) = (false, 3usize, Vec::new(), 0u64);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--rounds" => rounds = args.next().context(usage)?.parse().context(usage)?,
            "--latency-ms" => latency = args.next().context(usage)?.parse().context(usage)?,
            "--shape" => {
                let text = args.next().context(usage)?;
                let (files, size) = text.split_once('x').with_context(|| format!("{text:?}: {usage}"))?;
                shapes.push(Shape { files: files.parse().context(usage)?, size: size.parse().context(usage)? });
            }
            other => bail!("unknown option {other:?}; {usage}"),
        }
    }
    if shapes.is_empty() {
        shapes = vec![
            Shape { files: 10_000, size: 4096 },
            Shape { files: 100_000, size: 1024 },
            Shape { files: 1, size: 1 << 30 },
        ];
    }
    let python = crate::venv::python("target/interop/venv", crate::interop::PACKAGES)?;
    let binary = crate::cli_binary(true)?;
    let work = project_root().join("target/bench/sdk");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let latency_arg = latency.to_string();
    let server = ServedStore::start(
        &binary,
        &work.join("store"),
        &["--api-key", KEY, "--download-latency-ms", &latency_arg],
        Stdio::null(),
    )?;

    let mut misses = Vec::new();
    let mut leftovers = Vec::new();
    for shape in shapes {
        // [side][step] -> seconds per round; peak RSS per side; `cp -r` of the same tree per round.
        let mut seconds =
            [[Vec::new(), Vec::new(), Vec::new(), Vec::new()], [Vec::new(), Vec::new(), Vec::new(), Vec::new()]];
        let mut peaks = [0u64; 2];
        let mut copies = Vec::new();
        // Big files: our warm download against `cp` of the very file it copied, right after it, per round.
        let mut warm_over_cp = Vec::new();
        let shape_dir = work.join(format!("{}x{}", shape.files, shape.size));
        for round in 0..rounds {
            for side in [0, 1] {
                let name = format!("{}-{}x{}-r{round}", ["ours", "py"][side], shape.files, shape.size);
                let dir = shape_dir.join("files").join(&name);
                make_tree(&dir, shape, (round * 2 + side) as u64 + 1)?;
                if side == 0 {
                    // The kernel's floor for writing the same tree: cp -r, timed the same way.
                    let copy = shape_dir.join("cp").join(&name);
                    fs::create_dir_all(copy.parent().context("no parent")?)?;
                    settle()?;
                    let (elapsed, _, _) = measure(Command::new("cp").arg("-r").arg(&dir).arg(&copy))?;
                    copies.push(elapsed);
                }
                // The SDK puts what it logs into its cache: the log step gets a cache of its own, so the cold
                // download starts from an empty one on both sides.
                let (log_cache, cache) = (shape_dir.join("log-cache").join(&name), shape_dir.join("cache").join(&name));
                let (cold, warm) = (shape_dir.join("cold").join(&name), shape_dir.join("warm").join(&name));
                // Nothing is deleted between the steps: on ext4 a mass delete makes new files slow to create
                // for a minute or more (the allocator skips recently freed inodes), which would time the
                // filesystem, not the clients. Each download has a root of its own; the populated one reuses
                // the warm one.
                let steps = [(Step::Log(&dir), &cold), (Step::Get, &cold), (Step::Get, &warm), (Step::Get, &warm)];
                for (step, (what, root)) in steps.iter().enumerate() {
                    let mut command = match side {
                        0 => ours(&binary, &server.url, &name, what, root),
                        _ => theirs(&python, &server.url, &name, what, root),
                    };
                    command.env("WANDB_CACHE_DIR", if step == 0 { &log_cache } else { &cache });
                    settle()?;
                    let (elapsed, peak, _) = measure(&mut command)?;
                    seconds[side][step].push(elapsed);
                    peaks[side] = peaks[side].max(peak);
                    if side == 0 && step == 2 && is_big_file(shape) {
                        // What the warm download did, by the kernel alone: copy the cache object. Right after
                        // ours, so its source is exactly as hot as ours found it or hotter (the fair side for cp).
                        let object = largest_file(&cache)?;
                        let copy = shape_dir.join("cp-cached").join(&name);
                        fs::create_dir_all(&copy)?;
                        settle()?;
                        let (cp, _, _) = measure(Command::new("cp").arg(&object).arg(&copy))?;
                        warm_over_cp.push(elapsed.as_secs_f64() / cp.as_secs_f64().max(1e-9));
                        say(&format!(
                            "  round {round}: warm download {:.2} s, cp of the cache object {:.2} s",
                            elapsed.as_secs_f64(),
                            cp.as_secs_f64()
                        ));
                    }
                }
                ensure!(count_files(&cold)? == shape.files, "{name}: the cold root lacks files");
                ensure!(count_files(&warm)? == shape.files, "{name}: the warm root lacks files");
            }
            if is_big_file(shape) {
                // Big files: few inodes, but many bytes; the disk is freed each round.
                fs::remove_dir_all(&shape_dir)?;
            }
        }
        // Small files stay until the end, for the same reason as above.
        leftovers.push(shape_dir);
        say(&format!(
            "{} file(s) of {} bytes, {rounds} round(s), {latency} ms per file download, seconds (min–max, median; \
             ratios of the slowest and of the median rounds):",
            shape.files, shape.size
        ));
        let copy = span(&copies);
        for (step, label) in STEPS.iter().enumerate() {
            let (ours, theirs) = (span(&seconds[0][step]), span(&seconds[1][step]));
            let ratio = ours.1 / theirs.1.max(1e-9);
            let (our_median, their_median) = (median(&seconds[0][step]), median(&seconds[1][step]));
            // Judged by the median rounds: one round disturbed by something else on the machine must not decide.
            let median_ratio = our_median / their_median.max(1e-9);
            let target = ratio_target(shape, STEPS[step], latency);
            if median_ratio > target {
                misses.push(format!("{shape}: {label} ours/Python {median_ratio:.2} (medians), target {target}"));
            }
            say(&format!(
                "  {label:<20} Python {:>6.2}–{:<6.2} ({their_median:>6.2})  ours {:>6.2}–{:<6.2} ({our_median:>6.2})  \
                 ours/Python {ratio:.2}, median {:.2}",
                theirs.0, theirs.1, ours.0, ours.1, median_ratio
            ));
        }
        say(&format!("  cp -r of the tree     {:>7.2}–{:<7.2}", copy.0, copy.1));
        say(&format!("  peak RSS: Python {:.0} MiB, ours {:.0} MiB", mib(peaks[1]), mib(peaks[0])));
        if is_big_file(shape) {
            let worst = warm_over_cp.iter().copied().fold(0.0, f64::max);
            say(&format!("  warm download / cp of the cache object, worst round: {worst:.2}"));
            if worst > 1.5 {
                misses.push(format!("{shape}: warm download {worst:.2}× cp of the cache object, over 1.5×"));
            }
            if peaks[0] > BIG_FILE_RSS_BOUND {
                misses.push(format!(
                    "{shape}: our peak RSS {:.0} MiB, over {:.0} MiB",
                    mib(peaks[0]),
                    mib(BIG_FILE_RSS_BOUND)
                ));
            }
        }
    }
    for dir in leftovers {
        let _ = fs::remove_dir_all(dir);
    }
    if check {
        ensure!(misses.is_empty(), "targets missed:\n  {}", misses.join("\n  "));
        say("every target met");
    }
    Ok(())
}

/// What a streaming download of a big file may hold, whatever the file's size.
const BIG_FILE_RSS_BOUND: u64 = 64 << 20;

/// Few files: the bytes, not the count of files, are what is measured.
fn is_big_file(shape: Shape) -> bool {
    shape.files < 100
}

/// The largest ours/Python the transfer issue allows for `step` of `shape` with `latency_ms` per file download.
fn ratio_target(shape: Shape, step: &str, latency_ms: u64) -> f64 {
    match step {
        "cold download" if shape.files >= 10_000 && latency_ms >= 20 => 0.2,
        "cold download" if shape.files >= 10_000 => 0.1,
        _ => 1.0,
    }
}

/// Writes back what earlier steps left dirty in the page cache, untimed, so that each step pays for its own
/// writes only (a gigabyte written by the previous step otherwise throttles the next one's, whoever it is).
fn settle() -> Result<()> {
    ensure!(Command::new("sync").status()?.success(), "sync failed");
    Ok(())
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(samples: &[Duration]) -> f64 {
    let mut sorted: Vec<f64> = samples.iter().map(Duration::as_secs_f64).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

enum Step<'a> {
    Log(&'a Path),
    Get,
}

fn ours(binary: &Path, url: &str, name: &str, step: &Step<'_>, root: &Path) -> Command {
    let mut command = Command::new(binary);
    command.env("WANDB_BASE_URL", url).env("WANDB_API_KEY", KEY).stderr(Stdio::null());
    match step {
        Step::Log(dir) => command.arg("artifact").arg("put").arg(dir).args([
            "--name",
            &format!("bench/sdk/{name}"),
            "--type",
            "dataset",
        ]),
        Step::Get => command.args(["artifact", "get", &format!("bench/sdk/{name}:latest"), "--root"]).arg(root),
    };
    command
}

fn theirs(python: &Path, url: &str, name: &str, step: &Step<'_>, root: &Path) -> Command {
    let code = match step {
        Step::Log(dir) => format!(
            "import wandb\nrun = wandb.init(entity='bench', project='sdk', settings=wandb.Settings(x_disable_stats=True, \
             x_disable_meta=True, disable_git=True, disable_code=True, console='off', silent=True))\n\
             art = wandb.Artifact({name:?}, 'dataset')\nart.add_dir({:?})\nrun.log_artifact(art).wait()\nrun.finish()\n",
            dir.display().to_string()
        ),
        Step::Get => format!(
            "import wandb\nwandb.Api().artifact('bench/sdk/{name}:latest').download(root={:?})\n",
            root.display().to_string()
        ),
    };
    let mut command = Command::new(python);
    command
        .args(["-c", &code])
        .env("WANDB_BASE_URL", url)
        .env("WANDB_API_KEY", KEY)
        .env("WANDB_SILENT", "true")
        .env("WANDB_DIR", root.parent().unwrap_or(root))
        .stderr(Stdio::null());
    command
}

/// `shape.files` files of pseudo-random bytes from `seed`, 100 to a directory.
fn make_tree(dir: &Path, shape: Shape, seed: u64) -> Result<()> {
    let _ = fs::remove_dir_all(dir);
    use std::io::Write as _;
    let mut random = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    // Written a MiB at a time: the children's peak RSS (wait4) counts this process's high-water mark at the
    // spawn, so xtask itself must stay small.
    let mut chunk = vec![0u8; shape.size.min(1 << 20)];
    for i in 0..shape.files {
        let sub: PathBuf = dir.join(format!("d{:04}", i / 100));
        if i % 100 == 0 {
            fs::create_dir_all(&sub)?;
        }
        let mut file = fs::File::create(sub.join(format!("f{i:06}.bin")))?;
        let mut left = shape.size;
        while left > 0 {
            let n = left.min(chunk.len());
            random.fill(&mut chunk[..n]);
            file.write_all(&chunk[..n])?;
            left -= n;
        }
    }
    Ok(())
}

/// The largest file under `root` (a big-file shape's cache holds one object of note).
fn largest_file(root: &Path) -> Result<PathBuf> {
    let mut largest: Option<(u64, PathBuf)> = None;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let metadata = entry.metadata()?;
            if metadata.is_dir() {
                pending.push(entry.path());
            } else if largest.as_ref().is_none_or(|(size, _)| metadata.len() > *size) {
                largest = Some((metadata.len(), entry.path()));
            }
        }
    }
    largest.map(|(_, path)| path).with_context(|| format!("no file under {}", root.display()))
}

fn count_files(root: &Path) -> Result<usize> {
    let mut count = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else {
                count += 1;
            }
        }
    }
    Ok(count)
}

fn span(samples: &[Duration]) -> (f64, f64) {
    let secs = samples.iter().map(Duration::as_secs_f64);
    (secs.clone().fold(f64::INFINITY, f64::min), secs.fold(0.0, f64::max))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
