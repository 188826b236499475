//! Throughput of every module on a ~100 MB nested value (run by `cargo xtask bench serde`).
//!
//! Prints one JSON object per line: `{"module", "bytes", "encode_s", "decode_s"}` (medians), and writes the pickle
//! to the path given as the first argument so CPython can be timed on the same value.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_modules::Module;

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Record {
    id: u64,
    name: String,
    score: f64,
    tags: Vec<String>,
    embedding: Vec<f32>,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    meta: BTreeMap<String, i64>,
}

fn record(i: u64) -> Record {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Record {
        id: i,
        name: format!("record-{i:016x}-name"),
        score: (x % 10_000) as f64 / 7.0,
        tags: (0..3).map(|t| format!("tag{}", (x >> (t * 8)) & 0xff)).collect(),
        embedding: (0..32).map(|j| ((x >> (j % 64)) & 0xffff) as f32 / 65535.0).collect(),
        blob: (0..256).map(|j| (x >> (j % 56)) as u8).collect(),
        meta: [("a".to_owned(), (x & 0xffff) as i64), ("bb".to_owned(), -1), ("ccc".to_owned(), i as i64)].into(),
    }
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

#[allow(clippy::print_stdout, reason = "the benchmark reports on stdout")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pickle_path = std::env::args().nth(1).ok_or("usage: throughput PICKLE_PATH [RUNS]")?;
    let runs: usize = std::env::args().nth(2).map_or(Ok(3), |r| r.parse())?;
    let probe: Vec<Record> = (0..1000).map(record).collect();
    let per_record = Module::Pickle.encode(&probe, &Module::Pickle.default_options())?.len() / 1000;
    let count = (100 << 20) / per_record;
    let records: Vec<Record> = (0..count as u64).map(record).collect();
    println!("{{\"records\": {count}}}");
    for module in Module::ALL {
        if module == Module::Raw {
            continue;
        }
        let options = module.default_options();
        let (mut encode, mut decode, mut size) = (Vec::new(), Vec::new(), 0);
        for _ in 0..runs {
            let start = Instant::now();
            let bytes = module.encode(&records, &options)?;
            encode.push(start.elapsed().as_secs_f64());
            let start = Instant::now();
            let back: Vec<Record> = module.decode(&bytes)?;
            decode.push(start.elapsed().as_secs_f64());
            assert_eq!(back.len(), records.len());
            size = bytes.len();
            if module == Module::Pickle {
                std::fs::write(&pickle_path, &bytes)?;
            }
        }
        println!(
            "{{\"module\": \"{}\", \"bytes\": {size}, \"encode_s\": {}, \"decode_s\": {}}}",
            module.name(),
            median(encode),
            median(decode)
        );
    }
    Ok(())
}
