//! `cargo xtask bench add-dir`: the hashing benchmark of the artifact-core issue.
//!
//! Builds two fixture trees once (reused on later runs), warms the page cache, then times, as wall-clock
//! medians over several runs: `md5sum` over the small tree (one process, as a user would run it), two
//! parallel `md5sum` over the two large files, and `dagster-wandb artifact put --dry-run` on each tree, first
//! with an empty digest memo and then re-adding with the memo the first run left.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::{cargo, project_root, say};

const SMALL_DIRS: usize = 1_000;
const SMALL_FILES_PER_DIR: usize = 10;
const SMALL_FILE_SIZE: usize = 4 << 10;
const LARGE_FILES: usize = 2;
const LARGE_FILE_SIZE: u64 = 512 << 20;
const FIXTURE_VERSION: &str = "add-dir fixtures v1\n";

struct Options {
    check: bool,
    runs: usize,
    dir: PathBuf,
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let rest = match args.split_first().map(|(a, r)| (a.as_str(), r)) {
        Some(("add-dir", rest)) => rest,
        Some(("serde", rest)) => return crate::bench_serde::run(rest),
        Some(("sweep", rest)) => return crate::bench_sweep::run(rest),
        Some(("s3-prefix", rest)) => return crate::bench_s3_prefix::run(rest),
        Some(("manifest-memory", rest)) => return crate::bench_manifest_memory::run(rest),
        Some(("transfer", rest)) => return crate::bench_transfer::run(rest),
        Some(("server", rest)) => return crate::bench_server::run(rest),
        Some(("sdk", rest)) => return crate::bench_sdk::run(rest),
        Some(("web", rest)) => return crate::bench_web::run(rest),
        Some(("run-log", rest)) => {
            let mut bench = cargo();
            bench.args(["bench", "--quiet", "-p", "wandb-api", "--bench", "run_log", "--"]).args(rest);
            ensure!(bench.status()?.success(), "the run-log benchmark failed");
            return Ok(());
        }
        _ => bail!(
            "usage: cargo xtask bench add-dir [--check] [--runs N] [--dir DIR] | bench serde [--runs N] \
             | bench sweep [--check] [--runs N] [--dir DIR] | bench transfer [--check] [--size BYTES] [--dir DIR] \
             | bench run-log [--check] [--rows N] | bench s3-prefix [--objects N] \
             | bench manifest-memory [--check] [--entries N] | bench server [--requests N] [--entries N] \
             | bench sdk [--check] [--rounds N] [--shape FILESxBYTES]..."
        ),
    };
    let mut options = Options { check: false, runs: 5, dir: project_root().join("target/bench/add-dir") };
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--check" => options.check = true,
            "--runs" => {
                options.runs = rest.next().context("--runs needs a number")?.parse().context("--runs needs a number")?
            }
            "--dir" => options.dir = PathBuf::from(rest.next().context("--dir needs a path")?),
            other => bail!("unknown option {other:?}"),
        }
    }
    ensure!(options.runs >= 1, "--runs must be at least 1");
    add_dir(&options)
}

fn add_dir(options: &Options) -> Result<()> {
    let binary = crate::cli_binary(true)?;

    let small = options.dir.join("small");
    let large = options.dir.join("large");
    build_fixtures(&options.dir, &small, &large)?;
    let small_files = list_files(&small)?;
    let large_files = list_files(&large)?;
    ensure!(
        small_files.len() == SMALL_DIRS * SMALL_FILES_PER_DIR,
        "small tree is incomplete; delete {}",
        options.dir.display()
    );

    say(&format!(
        "fixtures in {}: {} files of {} KiB in {} dirs; {} files of {} MiB",
        options.dir.display(),
        small_files.len(),
        SMALL_FILE_SIZE >> 10,
        SMALL_DIRS,
        LARGE_FILES,
        LARGE_FILE_SIZE >> 20
    ));
    say(&format!("cores: {}, runs per figure: {} (median, warm page cache)", cores(), options.runs));
    // Warm the page cache so every figure below measures hashing, not the disk.
    run_md5sum(&[&small_files[..]])?;
    run_md5sum(&[&large_files[..1], &large_files[1..]])?;

    let work = options.dir.join("work");
    let md5_small = median(options.runs, || time(|| run_md5sum(&[&small_files[..]])))?;
    let md5_large = median(options.runs, || time(|| run_md5sum(&[&large_files[..1], &large_files[1..]])))?;
    // What a re-add cannot beat: one stat per file, as `find -printf` does it (single process).
    let stat_floor = median(options.runs, || time(|| find_stat(&small)))?;
    let (first_small, readd_small) = put_figures(&binary, &small, &work.join("small"), options.runs)?;
    let (first_large, readd_large) = put_figures(&binary, &large, &work.join("large"), options.runs)?;

    let ms = |d: Duration| format!("{:>9.1} ms", d.as_secs_f64() * 1000.0);
    say("");
    say("                         md5sum      put --dry-run   memoised re-add   speed-up");
    say(&format!(
        "small tree (1 process) {} {}      {}      {:>6.0}x",
        ms(md5_small),
        ms(first_small),
        ms(readd_small),
        ratio(first_small, readd_small)
    ));
    say(&format!(
        "large tree (2 parallel){} {}      {}      {:>6.0}x",
        ms(md5_large),
        ms(first_large),
        ms(readd_large),
        ratio(first_large, readd_large)
    ));
    say(&format!(
        "stat of every small-tree file (find -printf): {} -> re-add speed-up bound {:.0}x",
        ms(stat_floor).trim(),
        ratio(first_small, stat_floor)
    ));
    say("");

    let targets = [
        (
            "small tree put <= 0.2 s",
            first_small <= Duration::from_millis(200),
            format!("{:.3} s", first_small.as_secs_f64()),
        ),
        (
            "large tree put <= 1.1 x two parallel md5sum",
            first_large.as_secs_f64() <= 1.1 * md5_large.as_secs_f64(),
            format!("{:.2} x", first_large.as_secs_f64() / md5_large.as_secs_f64()),
        ),
        (
            "small tree re-add >= 50 x faster",
            ratio(first_small, readd_small) >= 50.0,
            format!("{:.0} x", ratio(first_small, readd_small)),
        ),
        (
            "large tree re-add >= 50 x faster",
            ratio(first_large, readd_large) >= 50.0,
            format!("{:.0} x", ratio(first_large, readd_large)),
        ),
    ];
    let mut missed = 0;
    for (name, met, figure) in &targets {
        say(&format!("{} {name}: {figure}", if *met { "PASS" } else { "MISS" }));
        missed += usize::from(!met);
    }
    if options.check && missed > 0 {
        bail!("{missed} target(s) missed");
    }
    Ok(())
}

/// Times `put --dry-run`: each first run with a fresh cache (so an empty digest memo), each re-add with the
/// cache the previous first run filled.
fn put_figures(binary: &Path, tree: &Path, work: &Path, runs: usize) -> Result<(Duration, Duration)> {
    let mut firsts = Vec::new();
    let mut readds = Vec::new();
    for i in 0..runs {
        let cache = work.join(format!("cache-{i}"));
        let _ = fs::remove_dir_all(&cache);
        firsts.push(time(|| put(binary, tree, &cache))?);
        readds.push(time(|| put(binary, tree, &cache))?);
    }
    let _ = fs::remove_dir_all(work);
    Ok((median_of(firsts), median_of(readds)))
}

fn put(binary: &Path, tree: &Path, cache: &Path) -> Result<()> {
    let status = Command::new(binary)
        .args(["artifact", "put"])
        .arg(tree)
        .args(["--name", "bench", "--type", "dataset", "--dry-run"])
        .env("WANDB_CACHE_DIR", cache)
        .env("WANDB_BASE_URL", format!("file://{}", cache.with_extension("store").display()))
        .stdout(Stdio::null())
        .status()?;
    ensure!(status.success(), "artifact put failed on {}", tree.display());
    Ok(())
}

/// `find DIR -type f -printf …`: reads the same stat fields the digest memo compares.
fn find_stat(dir: &Path) -> Result<()> {
    let status = Command::new("find")
        .arg(dir)
        .args(["-type", "f", "-printf", "%s %T@ %C@ %i %D\\n"])
        .stdout(Stdio::null())
        .status()
        .context("find is needed for the stat floor")?;
    ensure!(status.success(), "find failed");
    Ok(())
}

/// Runs one `md5sum` per group of files, all at once, and waits for them.
fn run_md5sum(groups: &[&[PathBuf]]) -> Result<()> {
    let children = groups
        .iter()
        .map(|files| {
            Command::new("md5sum")
                .args(*files)
                .stdout(Stdio::null())
                .spawn()
                .context("md5sum is needed for the comparison")
        })
        .collect::<Result<Vec<_>>>()?;
    for mut child in children {
        ensure!(child.wait()?.success(), "md5sum failed");
    }
    Ok(())
}

fn build_fixtures(dir: &Path, small: &Path, large: &Path) -> Result<()> {
    let marker = dir.join("FIXTURES");
    if fs::read_to_string(&marker).is_ok_and(|m| m == FIXTURE_VERSION) {
        return Ok(());
    }
    say(&format!("building fixtures in {} (once)…", dir.display()));
    let _ = fs::remove_dir_all(dir);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut buffer = vec![0u8; SMALL_FILE_SIZE];
    for d in 0..SMALL_DIRS {
        let sub = small.join(format!("dir{d:04}"));
        fs::create_dir_all(&sub)?;
        for f in 0..SMALL_FILES_PER_DIR {
            rng.fill(&mut buffer);
            fs::write(sub.join(format!("file{f:02}.bin")), &buffer)?;
        }
    }
    fs::create_dir_all(large)?;
    let mut chunk = vec![0u8; 1 << 20];
    for i in 0..LARGE_FILES {
        let mut out = BufWriter::new(File::create(large.join(format!("large{i}.bin")))?);
        for _ in 0..(LARGE_FILE_SIZE >> 20) {
            rng.fill(&mut chunk);
            out.write_all(&chunk)?;
        }
        out.flush()?;
    }
    // The digest memo only trusts files that changed more than two seconds before they were hashed.
    std::thread::sleep(Duration::from_millis(2500));
    fs::write(marker, FIXTURE_VERSION)?;
    Ok(())
}

fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() { stack.push(path) } else { out.push(path) }
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }
}

fn time(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

fn median(runs: usize, mut f: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    Ok(median_of((0..runs).map(|_| f()).collect::<Result<Vec<_>>>()?))
}

fn median_of(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ratio(slow: Duration, fast: Duration) -> f64 {
    slow.as_secs_f64() / fast.as_secs_f64().max(1e-9)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
