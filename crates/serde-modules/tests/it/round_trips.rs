//! Encode then decode gives the value back, for every module; typed values survive through Value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_modules::{Error, Module, Value, from_value, to_value};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Kind {
    Plain,
    Weighted(f64),
    Tagged { label: String, score: i32 },
    Pair(u8, bool),
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Record {
    id: u64,
    name: String,
    kinds: Vec<Kind>,
    counts: BTreeMap<String, i64>,
    by_number: BTreeMap<i32, String>,
    point: (f32, f64),
    maybe: Option<Box<Record>>,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    big: u128,
    unit: (),
}

fn record() -> Record {
    Record {
        id: u64::MAX,
        name: "héllo ✓".into(),
        kinds: vec![
            Kind::Plain,
            Kind::Weighted(0.5),
            Kind::Tagged { label: "x".into(), score: -3 },
            Kind::Pair(7, true),
        ],
        counts: [("a".to_owned(), -1), ("b".to_owned(), i64::MIN)].into(),
        by_number: [(1, "one".to_owned()), (-2, "minus two".to_owned())].into(),
        point: (1.5, -2.25),
        maybe: Some(Box::new(Record {
            id: 1,
            name: String::new(),
            kinds: vec![],
            counts: BTreeMap::new(),
            by_number: BTreeMap::new(),
            point: (0.0, 0.0),
            maybe: None,
            blob: vec![],
            big: 0,
            unit: (),
        })),
        blob: vec![0, 1, 255, 128],
        big: u128::MAX,
        unit: (),
    }
}

#[test]
fn typed_values_round_trip_through_every_module() {
    let value = record();
    for module in Module::ALL {
        if module == Module::Raw {
            continue;
        }
        let options = module.default_options();
        let bytes = match module.encode(&value, &options) {
            Ok(bytes) => bytes,
            // msgpack has no integers beyond 64 bits; that is the one thing it may refuse here.
            Err(Error::Unsupported { module: "msgpack", reason }) => {
                assert!(reason.contains("beyond 64 bits"), "{reason}");
                let mut small = value.clone();
                small.big = 1;
                module.encode(&small, &options).unwrap()
            }
            Err(e) => panic!("{module}: {e}"),
        };
        let back: Record = module.decode(&bytes).unwrap_or_else(|e| panic!("{module}: {e}"));
        let mut expected = value.clone();
        if module == Module::Msgpack {
            expected.big = 1;
        }
        assert_eq!(back, expected, "{module}");
    }
}

#[test]
fn every_pickle_protocol_round_trips() {
    let value = to_value(&record()).unwrap();
    for protocol in 2..=5 {
        for module in [Module::Pickle, Module::Dill, Module::Cloudpickle, Module::Joblib] {
            let params = serde_json::json!({"protocol": protocol});
            let options = module.options(params.as_object().unwrap()).unwrap();
            let bytes = module.encode_value(&value, &options).unwrap();
            assert_eq!(bytes[..2], [0x80, protocol as u8], "{module} p{protocol}");
            assert_eq!(module.decode_value(&bytes).unwrap(), value, "{module} p{protocol}");
            assert_eq!(module.metadata(&options)["source_pickle_protocol_used"], protocol);
        }
    }
}

#[test]
fn large_payloads_are_framed_like_cpython() {
    let big = Value::List(vec![Value::Bytes(vec![7; 200_000]), Value::Str("s".repeat(70_000)), Value::Int(1)]);
    let bytes = Module::Pickle.encode_value(&big, &Module::Pickle.default_options()).unwrap();
    assert_eq!(Module::Pickle.decode_value(&bytes).unwrap(), big);
    // As CPython: the 2-byte frame before the first large payload has no FRAME header, both payloads are
    // written outside frames, and the last frame (4 bytes: K 1 e .) gets one.
    assert_eq!(&bytes[..4], &[0x80, 5, b']', b'(']);
    assert!(bytes.ends_with(&[0x95, 4, 0, 0, 0, 0, 0, 0, 0, b'K', 1, b'e', b'.']), "{:?}", &bytes[bytes.len() - 13..]);
    assert!(bytes.len() < 270_100);
}

#[test]
fn untyped_values_keep_python_shapes() {
    let v = Value::Dict(vec![
        (Value::Tuple(vec![Value::Int(1), Value::Str("k".into())]), Value::Bytes(vec![1, 2])),
        (Value::None, Value::from_bigint(num_bigint_big())),
        (Value::Float(-0.0), Value::List(vec![Value::Bool(false), Value::Float(f64::INFINITY)])),
    ]);
    for module in [Module::Pickle, Module::Json] {
        let bytes = module.encode_value(&v, &module.default_options()).unwrap();
        let back = module.decode_value(&bytes).unwrap();
        assert_eq!(back.to_json_view(), v.to_json_view(), "{module}");
    }
    // msgpack has arrays, not tuples, and no big integers: what it cannot hold is an error, not a loss.
    assert!(Module::Msgpack.encode_value(&v, &Module::Msgpack.default_options()).is_err());
    let raw = Module::Raw.encode_value(&Value::Bytes(vec![1, 2, 3]), &Module::Raw.default_options()).unwrap();
    assert_eq!(raw, [1, 2, 3]);
    assert!(Module::Raw.encode_value(&Value::Str("x".into()), &Module::Raw.default_options()).is_err());
    assert!(matches!(Module::Bincode.decode_value(&[0]), Err(Error::NotSelfDescribing { module: "bincode" })));
    let typed: Vec<u8> = from_value(Module::Raw.decode_value(&[9, 8]).unwrap()).unwrap();
    assert_eq!(typed, [9, 8]);
}

fn num_bigint_big() -> num_bigint::BigInt {
    num_bigint::BigInt::from(-3) * num_bigint::BigInt::from(u128::MAX)
}

#[test]
fn protocol_2_writes_bytes_as_cpython_does() {
    let params = serde_json::json!({"protocol": 2});
    let options = Module::Pickle.options(params.as_object().unwrap()).unwrap();
    let bytes = Module::Pickle.encode_value(&Value::Bytes(vec![0, 255]), &options).unwrap();
    assert!(bytes.windows(16).any(|w| w == b"c_codecs\nencode\n"));
    assert_eq!(Module::Pickle.decode_value(&bytes).unwrap(), Value::Bytes(vec![0, 255]));
    let empty = Module::Pickle.encode_value(&Value::Bytes(vec![]), &options).unwrap();
    assert_eq!(Module::Pickle.decode_value(&empty).unwrap(), Value::Bytes(vec![]));
    let unhashable = Value::Dict(vec![(Value::List(vec![]), Value::None)]);
    assert!(Module::Pickle.encode_value(&unhashable, &options).unwrap_err().to_string().contains("not hashable"));
}
