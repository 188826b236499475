//! Property tests: round trips for arbitrary values, and no panic on arbitrary bytes.

use num_bigint::BigInt;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_modules::{Module, Value};

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<i128>().prop_map(|n| Value::from_bigint(BigInt::from(n) * 1_000_003)),
        any::<f64>().prop_filter("NaN never equals itself", |f| !f.is_nan()).prop_map(Value::Float),
        ".{0,12}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Value::Bytes),
    ]
}

fn key() -> impl Strategy<Value = Value> {
    prop_oneof![
        ".{0,6}".prop_map(Value::Str),
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(".{0,3}".prop_map(Value::Str), 0..3).prop_map(Value::Tuple),
    ]
}

/// Arbitrary plain data with Python-hashable dict keys (distinct, as Python dict keys are).
fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            proptest::collection::vec((key(), inner), 0..6).prop_map(|pairs| {
                let mut seen = Vec::new();
                Value::Dict(
                    pairs
                        .into_iter()
                        .filter(|(k, _)| {
                            let view = k.to_json_view();
                            let fresh = !seen.contains(&view);
                            seen.push(view);
                            fresh
                        })
                        .collect(),
                )
            }),
        ]
    })
}

/// What msgpack can hold: no big integers, and tuples read back as lists.
fn msgpack_shape(v: &Value) -> Option<Value> {
    Some(match v {
        Value::BigInt(n) => {
            return (u64::try_from(n).is_ok()).then(|| v.clone());
        }
        Value::List(items) | Value::Tuple(items) => {
            Value::List(items.iter().map(msgpack_shape).collect::<Option<_>>()?)
        }
        Value::Dict(items) => {
            Value::Dict(items.iter().map(|(k, v)| Some((msgpack_shape(k)?, msgpack_shape(v)?))).collect::<Option<_>>()?)
        }
        other => other.clone(),
    })
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Typed {
    a: u32,
    b: Vec<String>,
    c: Option<(i64, bool)>,
    d: Vec<u8>,
}

fn typed() -> impl Strategy<Value = Typed> {
    (
        any::<u32>(),
        proptest::collection::vec(".{0,8}", 0..4),
        any::<Option<(i64, bool)>>(),
        proptest::collection::vec(any::<u8>(), 0..32),
    )
        .prop_map(|(a, b, c, d)| Typed { a, b, c, d })
}

// 256 cases by default; PROPTEST_CASES=n runs more.
proptest! {

    #[test]
    fn pickle_family_and_json_round_trip(v in value()) {
        for module in [Module::Pickle, Module::Dill, Module::Cloudpickle, Module::Joblib, Module::Json] {
            let bytes = module.encode_value(&v, &module.default_options()).unwrap();
            prop_assert_eq!(&module.decode_value(&bytes).unwrap(), &v, "{}", module);
        }
        let joblib = Module::Joblib.options(serde_json::json!({"compress": 9}).as_object().unwrap()).unwrap();
        let bytes = Module::Joblib.encode_value(&v, &joblib).unwrap();
        prop_assert_eq!(&Module::Joblib.decode_value(&bytes).unwrap(), &v);
    }

    #[test]
    fn msgpack_round_trips_what_it_can_hold(v in value()) {
        if let Some(expected) = msgpack_shape(&v) {
            let bytes = Module::Msgpack.encode_value(&v, &Module::Msgpack.default_options()).unwrap();
            prop_assert_eq!(Module::Msgpack.decode_value(&bytes).unwrap(), expected);
        }
    }

    #[test]
    fn typed_values_round_trip_everywhere(t in typed()) {
        for module in Module::ALL {
            if module == Module::Raw {
                continue;
            }
            let bytes = module.encode(&t, &module.default_options()).unwrap();
            prop_assert_eq!(&module.decode::<Typed>(&bytes).unwrap(), &t, "{}", module);
        }
    }

    #[test]
    fn raw_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let encoded = Module::Raw.encode_value(&Value::Bytes(bytes.clone()), &Module::Raw.default_options()).unwrap();
        prop_assert_eq!(Module::Raw.decode_value(&encoded).unwrap(), Value::Bytes(bytes));
    }

    #[test]
    fn the_reader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Module::Pickle.decode_value(&bytes);
        let _ = Module::Joblib.decode_value(&bytes);
        let _ = Module::Msgpack.decode_value(&bytes);
        let _ = Module::Json.decode_value(&bytes);
    }

    #[test]
    fn the_reader_never_panics_on_damaged_streams(v in value(), cut in any::<prop::sample::Index>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)) {
        let mut bytes = Module::Pickle.encode_value(&v, &Module::Pickle.default_options()).unwrap();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = Module::Pickle.decode_value(&bytes);
    }
}
