//! The W&B tutorial "Track models and datasets" (the Artifacts pipeline-versioning notebook) in Rust.
//!
//! Three runs, as in the tutorial: `load-data` logs a raw dataset; `preprocess-data` uses it and logs a
//! normalised dataset; `train` uses that and logs a model. Then the lineage of the model is printed, back to
//! the raw data. The data is a small synthetic stand-in for MNIST (28x28 images of ten classes) so the example
//! needs no download; it is deterministic, so running the example again dedups every artifact.
//!
//! Run it with `cargo run -p examples --example track_models_and_datasets`.

use std::fs;
use std::io::Write;

use anyhow::{Context, Result};
use dagster_wandb::api::{ArtifactVersion, Settings, default_download_root};
use dagster_wandb::artifact::NewFileOptions;
use dagster_wandb::{Artifact, DownloadOptions, EmbeddedStore, LogOptions, ProjectRef, RunOptions, download};
use serde_json::json;

const PIXELS: usize = 28 * 28;
const SPLITS: [(&str, usize); 3] = [("training", 600), ("validation", 100), ("test", 100)];

#[allow(clippy::print_stdout, reason = "an example reports what it does")]
fn main() -> Result<()> {
    let settings = Settings::from_env()?;
    let store = settings.open_store()?;
    let project_name = std::env::var("WANDB_PROJECT").unwrap_or_else(|_| "artifacts-example".to_owned());
    let project = ProjectRef::new(&settings.entity, &project_name)?;
    println!("embedded store: {}  project: {project}", store.root().display());

    let raw = load_and_log(&store, &project)?;
    println!("1. load-data        logged {}", describe(&raw));
    let processed = preprocess_and_log(&store, &project)?;
    println!("2. preprocess-data  logged {}", describe(&processed));
    let model = train_and_log(&store, &project)?;
    println!("3. train            logged {}", describe(&model));

    println!("\nlineage of {}:", model.qualified_name());
    print_lineage(&store, &model, 1)?;
    Ok(())
}

fn describe(version: &ArtifactVersion) -> String {
    format!(
        "{} ({}, {} files, {} bytes, aliases {:?})",
        version.qualified_name(),
        version.artifact_type,
        version.file_count,
        version.size,
        version.aliases
    )
}

/// Step 1: the raw dataset, written straight into the artifact with `new_file`.
fn load_and_log(store: &EmbeddedStore, project: &ProjectRef) -> Result<ArtifactVersion> {
    let run = store.create_run(project, RunOptions { job_type: Some("load-data".into()), ..Default::default() })?;
    let mut raw = Artifact::new("mnist-raw", "dataset")?;
    raw.set_description(Some("Raw MNIST dataset, split into train/val/test".into()));
    let sizes: Vec<usize> = SPLITS.iter().map(|(_, n)| *n).collect();
    raw.set_metadata(json!({"source": "synthetic stand-in for torchvision.datasets.MNIST", "sizes": sizes}))?;
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for (split, count) in SPLITS {
        let mut file = raw.new_file(&format!("{split}.bin"), NewFileOptions::default())?;
        for i in 0..count {
            let label = (i % 10) as u8;
            file.write_all(&[label])?;
            let image: Vec<u8> = (0..PIXELS).map(|p| synthetic_pixel(label, p, &mut rng)).collect();
            file.write_all(&image)?;
        }
        file.close()?;
    }
    let logged = store.log_artifact(project, &raw, &LogOptions { run_id: Some(run.id), ..Default::default() })?;
    Ok(logged.version)
}

/// Step 2: use the raw data, normalise it to [0, 1] floats, log the result.
fn preprocess_and_log(store: &EmbeddedStore, project: &ProjectRef) -> Result<ArtifactVersion> {
    let run =
        store.create_run(project, RunOptions { job_type: Some("preprocess-data".into()), ..Default::default() })?;
    let raw = store.use_artifact(project, "mnist-raw:latest", Some(&run.id))?;
    let raw_dir = fetch(store, &raw)?;
    let mut processed = Artifact::new("mnist-preprocess", "dataset")?;
    processed.set_description(Some("Preprocessed MNIST dataset".into()));
    processed.set_metadata(json!({"normalize": true, "expand_dims": true}))?;
    for (split, _) in SPLITS {
        let bytes = fs::read(raw_dir.join(format!("{split}.bin")))?;
        let mut file = processed.new_file(&format!("{split}.bin"), NewFileOptions::default())?;
        for record in bytes.chunks(1 + PIXELS) {
            file.write_all(&[record[0]])?;
            for pixel in &record[1..] {
                file.write_all(&(f32::from(*pixel) / 255.0).to_le_bytes())?;
            }
        }
        file.close()?;
    }
    let logged = store.log_artifact(project, &processed, &LogOptions { run_id: Some(run.id), ..Default::default() })?;
    Ok(logged.version)
}

/// Step 3: "train" a nearest-centroid classifier on the preprocessed data, log it as a model.
fn train_and_log(store: &EmbeddedStore, project: &ProjectRef) -> Result<ArtifactVersion> {
    let run = store.create_run(project, RunOptions { job_type: Some("train".into()), ..Default::default() })?;
    let data = store.use_artifact(project, "mnist-preprocess:latest", Some(&run.id))?;
    let dir = fetch(store, &data)?;
    let load = |split: &str| -> Result<Vec<(u8, Vec<f32>)>> {
        let bytes = fs::read(dir.join(format!("{split}.bin")))?;
        Ok(bytes
            .chunks(1 + 4 * PIXELS)
            .map(|r| (r[0], r[1..].chunks(4).map(|f| f32::from_le_bytes([f[0], f[1], f[2], f[3]])).collect()))
            .collect())
    };
    let training = load("training")?;
    let mut centroids = vec![vec![0f32; PIXELS]; 10];
    let mut counts = [0f32; 10];
    for (label, image) in &training {
        counts[*label as usize] += 1.0;
        centroids[*label as usize].iter_mut().zip(image).for_each(|(c, x)| *c += x);
    }
    for (centroid, count) in centroids.iter_mut().zip(counts) {
        centroid.iter_mut().for_each(|c| *c /= count.max(1.0));
    }
    let validation = load("validation")?;
    let correct = validation.iter().filter(|(label, image)| predict(&centroids, image) == *label).count();
    let accuracy = correct as f64 / validation.len() as f64;

    let mut model = Artifact::new("trained-model", "model")?;
    model.set_description(Some("Nearest-centroid classifier trained on mnist-preprocess".into()));
    model.set_metadata(json!({"classes": 10, "validation_accuracy": accuracy}))?;
    let mut file = model.new_file("centroids.f32", NewFileOptions::default())?;
    for value in centroids.iter().flatten() {
        file.write_all(&value.to_le_bytes())?;
    }
    file.close()?;
    let options = LogOptions { aliases: vec!["best".into()], run_id: Some(run.id), ..Default::default() };
    Ok(store.log_artifact(project, &model, &options)?.version)
}

/// Downloads a version into `./artifacts/<name>:vN` (verified, through the W&B cache) and returns the root.
fn fetch(store: &EmbeddedStore, version: &ArtifactVersion) -> Result<std::path::PathBuf> {
    let root = default_download_root(&version.name, &version.version())?;
    let cache = dagster_wandb::ContentCache::from_env().ok();
    download(store, &store.manifest(version)?, &root, &DownloadOptions { cache, ..Default::default() })
        .with_context(|| format!("downloading {}", version.qualified_name()))?;
    Ok(root)
}

/// Walks from a version to the run that logged it, that run's inputs, and so on.
#[allow(clippy::print_stdout, reason = "an example reports what it does")]
fn print_lineage(store: &EmbeddedStore, version: &ArtifactVersion, depth: usize) -> Result<()> {
    let indent = "  ".repeat(depth);
    let lineage = store.lineage(version)?;
    let Some(run) = lineage.created_by else {
        println!("{indent}{} was logged outside any run", version.qualified_name());
        return Ok(());
    };
    println!(
        "{indent}{} <- logged by run {} ({})",
        version.qualified_name(),
        run.id,
        run.job_type.as_deref().unwrap_or("?")
    );
    for input in &run.inputs {
        println!("{indent}  run {} used {}", run.id, input.name);
        print_lineage(store, &store.artifact_by_id(&input.id)?, depth + 2)?;
    }
    Ok(())
}

fn predict(centroids: &[Vec<f32>], image: &[f32]) -> u8 {
    let distance = |c: &Vec<f32>| c.iter().zip(image).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
    (0..centroids.len()).min_by(|a, b| distance(&centroids[*a]).total_cmp(&distance(&centroids[*b]))).unwrap_or(0) as u8
}

/// A blurry digit-like blob per class plus noise, from a fixed-seed xorshift generator.
fn synthetic_pixel(label: u8, pixel: usize, rng: &mut u64) -> u8 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let (row, col) = ((pixel / 28) as f32, (pixel % 28) as f32);
    let (cy, cx) = (8.0 + f32::from(label % 3) * 6.0, 6.0 + f32::from(label / 3) * 5.0);
    let blob = (-((row - cy).powi(2) + (col - cx).powi(2)) / 18.0).exp() * 220.0;
    (blob + (*rng % 35) as f32).min(255.0) as u8
}
