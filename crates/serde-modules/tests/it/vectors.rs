//! Every stream the real pickle, dill, cloudpickle and joblib wrote decodes to its JSON view; every refusal
//! case is refused and nothing runs.

use std::path::Path;

use serde_modules::{Error, Module};

use crate::{read_json, testdata};

fn check_index(dir: &Path) -> usize {
    let index = read_json(&dir.join("index.json"));
    let mut checked = 0;
    for (case, spec) in index["cases"].as_object().unwrap() {
        for (file, info) in spec["files"].as_object().unwrap() {
            let module = Module::from_name(info["module"].as_str().unwrap()).unwrap();
            let bytes = std::fs::read(dir.join(file)).unwrap();
            let value = module.decode_value(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(value.to_json_view(), spec["json"], "{case}: {file}");
            checked += 1;
        }
    }
    checked
}

#[test]
fn python_written_streams_decode_to_their_views() {
    let checked = check_index(&testdata("wandb-0.31.0/pickle"));
    assert_eq!(checked, 56, "7 cases x (4 pickle protocols + dill + cloudpickle + 2 joblib)");
}

#[test]
fn protocols_0_and_1_decode_too() {
    assert_eq!(check_index(&testdata("cpython-3.11-protocols-0-1")), 10);
}

#[test]
fn code_is_refused_by_name_and_nothing_runs() {
    let marker = Path::new("/tmp/pickle-executed");
    let existed_before = marker.exists();
    let dir = testdata("wandb-0.31.0/pickle");
    let index = read_json(&dir.join("index.json"));
    assert_eq!(index["refuse"].as_object().unwrap().len(), 3);

    let read = |file: &str, module: Module| module.decode_value(&std::fs::read(dir.join(file)).unwrap());
    for module in [Module::Pickle, Module::Dill, Module::Cloudpickle, Module::Joblib] {
        let err = read("refuse_reduce_os_system.pickle", module).unwrap_err();
        assert!(matches!(err, Error::Refused { opcode: "GLOBAL", .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "refusing pickle opcode GLOBAL 'posix system' at byte 2: rebuilding this value would import or call Python code; only plain data (None, bool, int, float, str, bytes, list, tuple, dict) is loaded; nothing was evaluated"
        );
    }
    let err = read("refuse_lambda.cloudpickle", Module::Cloudpickle).unwrap_err();
    assert!(matches!(err, Error::Refused { opcode: "STACK_GLOBAL", .. }), "{err}");
    assert!(err.to_string().contains("cloudpickle"), "names the global: {err}");
    let err = read("refuse_truncated.pickle", Module::Pickle).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    if !existed_before {
        assert!(!marker.exists(), "decoding must never execute the payload");
    }
}

#[test]
fn every_code_opcode_is_refused() {
    // Each stream reaches the opcode with a plausible stack, so the refusal is about the opcode itself.
    let cases: &[(&[u8], &str)] = &[
        (b"\x80\x04\x8c\x02os\x8c\x06system\x93.", "STACK_GLOBAL"),
        (b"\x80\x02cbuiltins\neval\n.", "GLOBAL"),
        (b"\x80\x02}N\x86b.", "BUILD"),
        (b"(ios\nsystem\n.", "INST"),
        (b"(N)o.", "OBJ"),
        (b"\x80\x02N)\x81.", "NEWOBJ"),
        (b"\x80\x04N)}\x92.", "NEWOBJ_EX"),
        (b"\x80\x02\x82\x01.", "EXT1"),
        (b"\x80\x02\x83\x01\x00.", "EXT2"),
        (b"\x80\x02\x84\x01\x00\x00\x00.", "EXT4"),
        (b"Pid\n.", "PERSID"),
        (b"\x80\x02NQ.", "BINPERSID"),
        (b"\x80\x02N)R.", "REDUCE"),
        (b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00utf-8\x86R.", "REDUCE"),
    ];
    for (stream, opcode) in cases {
        match Module::Pickle.decode_value(stream) {
            Err(Error::Refused { opcode: got, .. }) => assert_eq!(got, *opcode, "{stream:?}"),
            other => panic!("{opcode}: expected a refusal, got {other:?}"),
        }
    }
}
