//! The W&B tutorial "Track models and datasets" (the Artifacts pipeline-versioning notebook) in Rust.
//!
//! Three runs, as in the tutorial: `load-data` logs a raw dataset; `preprocess-data` uses it and logs a
//! normalised dataset; `train` uses that and logs a model. Then the lineage of the model is printed, back to
//! the raw data. The data is a small synthetic stand-in for MNIST (28x28 images of ten classes) so the example
//! needs no download; it is deterministic, so running the example again dedups every artifact.
//!
//! The same code runs on the embedded store (the default) and on a W&B server: `WANDB_BASE_URL` alone decides.
//!
//! Run it with `cargo run -p examples --example track_models_and_datasets`.

use std::fs;
use std::io::Write;

use anyhow::Result;
use dagster_wandb::api::ArtifactHandle;
use dagster_wandb::artifact::NewFileOptions;
use dagster_wandb::{Api, Artifact, RunSettings};
use serde_json::json;

const PROJECT: &str = "artifacts-example";
const PIXELS: usize = 28 * 28;
const SPLITS: [(&str, usize); 3] = [("training", 600), ("validation", 100), ("test", 100)];

#[allow(clippy::print_stdout, reason = "an example reports what it does")]
fn main() -> Result<()> {
    let api = Api::from_env()?; // the embedded store unless WANDB_BASE_URL names a W&B server
    println!("backend: {}  project: {}/{PROJECT}", api.backend().base_url(), api.settings().entity);

    load_and_log(&api)?;
    preprocess_and_log(&api)?;
    train_and_log(&api)?;

    let model = api.artifact(&format!("{PROJECT}/trained-model:best"))?;
    println!("\nlineage of {}:", model.qualified_name());
    print_lineage(&api, &model, 1)?;
    Ok(())
}

#[allow(clippy::print_stdout, reason = "an example reports what it does")]
fn report(step: &str, logged: &dagster_wandb::api::LoggedArtifact) {
    let v = &logged.version;
    println!(
        "{step:<18} logged {} ({}, {} files, {} bytes, aliases {:?}{})",
        v.qualified_name(),
        v.artifact_type,
        v.file_count,
        v.size,
        v.aliases,
        if logged.created { "" } else { ", unchanged" }
    );
}

/// Step 1: the raw dataset, written straight into the artifact with `new_file`.
fn load_and_log(api: &Api) -> Result<()> {
    let run = api.init(RunSettings::new(PROJECT).job_type("load-data"))?;
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
    report("1. load-data", &run.log_artifact(&raw, &[])?);
    run.finish()?;
    Ok(())
}

/// Step 2: use the raw data, normalise it to [0, 1] floats, log the result.
fn preprocess_and_log(api: &Api) -> Result<()> {
    let run = api.init(RunSettings::new(PROJECT).job_type("preprocess-data"))?;
    let mut processed = Artifact::new("mnist-preprocess", "dataset")?;
    processed.set_description(Some("Preprocessed MNIST dataset".into()));
    processed.set_metadata(json!({"normalize": true, "expand_dims": true}))?;
    let raw_dataset = run.use_artifact("mnist-raw:latest")?.download()?;
    for (split, _) in SPLITS {
        let bytes = fs::read(raw_dataset.join(format!("{split}.bin")))?;
        let mut file = processed.new_file(&format!("{split}.bin"), NewFileOptions::default())?;
        for record in bytes.chunks(1 + PIXELS) {
            file.write_all(&[record[0]])?;
            for pixel in &record[1..] {
                file.write_all(&(f32::from(*pixel) / 255.0).to_le_bytes())?;
            }
        }
        file.close()?;
    }
    report("2. preprocess-data", &run.log_artifact(&processed, &[])?);
    run.finish()?;
    Ok(())
}

/// Step 3: "train" a nearest-centroid classifier on the preprocessed data, log it as a model.
fn train_and_log(api: &Api) -> Result<()> {
    let mut run = api.init(RunSettings::new(PROJECT).job_type("train"))?;
    let dir = run.use_artifact("mnist-preprocess:latest")?.download()?;
    let load = |split: &str| -> Result<Vec<(u8, Vec<f32>)>> {
        let bytes = fs::read(dir.join(format!("{split}.bin")))?;
        Ok(bytes
            .chunks(1 + 4 * PIXELS)
            .map(|r| (r[0], r[1..].chunks(4).map(|f| f32::from_le_bytes([f[0], f[1], f[2], f[3]])).collect()))
            .collect())
    };
    let training = load("training")?;
    let validation = load("validation")?;
    // Nearest-centroid training, a batch at a time: the centroids are the running means of the images seen, and
    // the validation accuracy after each batch is the run's metric curve.
    let mut sums = vec![vec![0f32; PIXELS]; 10];
    let mut counts = [0f32; 10];
    let mut accuracy = 0.0;
    for (batch, images) in training.chunks(30).enumerate() {
        for (label, image) in images {
            counts[*label as usize] += 1.0;
            sums[*label as usize].iter_mut().zip(image).for_each(|(c, x)| *c += x);
        }
        let centroids = means(&sums, &counts);
        let correct = validation.iter().filter(|(label, image)| predict(&centroids, image) == *label).count();
        accuracy = correct as f64 / validation.len() as f64;
        let seen = (batch + 1) * 30;
        run.log(
            json!({"validation/accuracy": accuracy, "train/images_seen": seen})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )?;
    }
    let centroids = means(&sums, &counts);

    let mut model = Artifact::new("trained-model", "model")?;
    model.set_description(Some("Nearest-centroid classifier trained on mnist-preprocess".into()));
    model.set_metadata(json!({"classes": 10, "validation_accuracy": accuracy}))?;
    let mut file = model.new_file("centroids.f32", NewFileOptions::default())?;
    for value in centroids.iter().flatten() {
        file.write_all(&value.to_le_bytes())?;
    }
    file.close()?;
    report("3. train", &run.log_artifact(&model, &["best"])?);
    run.finish()?;
    Ok(())
}

/// Walks from a version to the run that logged it, that run's inputs, and so on.
#[allow(clippy::print_stdout, reason = "an example reports what it does")]
fn print_lineage(api: &Api, version: &ArtifactHandle, depth: usize) -> Result<()> {
    let indent = "  ".repeat(depth);
    let Some(run) = version.logged_by()? else {
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
        print_lineage(api, &api.artifact_by_id(&input.id)?, depth + 2)?;
    }
    Ok(())
}

/// Each class's mean image.
fn means(sums: &[Vec<f32>], counts: &[f32; 10]) -> Vec<Vec<f32>> {
    sums.iter().zip(counts).map(|(sum, count)| sum.iter().map(|s| s / count.max(1.0)).collect()).collect()
}

/// The squared distance between an image and a centroid.
fn distance(centroid: &[f32], image: &[f32]) -> f32 {
    centroid.iter().zip(image).map(|(a, b)| (a - b) * (a - b)).sum()
}

fn predict(centroids: &[Vec<f32>], image: &[f32]) -> u8 {
    let by_distance =
        |a: &usize, b: &usize| distance(&centroids[*a], image).total_cmp(&distance(&centroids[*b], image));
    (0..centroids.len()).min_by(by_distance).unwrap_or(0) as u8
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
