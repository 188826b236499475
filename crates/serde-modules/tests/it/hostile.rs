//! Streams written to hurt: limits hold, errors are clean, nothing panics.

use serde_modules::{DEFAULT_MAX_INT_DIGITS, Error, Limits, Module, Value};

fn decode(stream: &[u8]) -> serde_modules::Result<Value> {
    Module::Pickle.decode_value(stream)
}

#[test]
fn shared_references_cannot_explode() {
    // x0 = [big string]; x(n+1) = [xn, xn]: 60 levels would be 2^60 nodes once materialised.
    let mut s = vec![0x80, 0x04, b']', 0x94];
    s.extend_from_slice(&[0x8c, 8]);
    s.extend_from_slice(b"payload!");
    s.push(b'a');
    for level in 0..60u32 {
        // EMPTY_LIST, MEMOIZE, MARK, GET prev, GET prev, APPENDS
        s.extend_from_slice(&[b']', 0x94, b'(']);
        for _ in 0..2 {
            s.push(b'j');
            s.extend_from_slice(&level.to_le_bytes());
        }
        s.push(b'e');
    }
    s.push(b'.');
    let err = decode(&s).unwrap_err();
    assert!(matches!(err, Error::Limit { .. }), "{err}");
}

#[test]
fn deep_nesting_and_cycles_are_limits_not_crashes() {
    // 100,000 nested lists built with APPEND: cheap to write, fatal to a naive recursive reader.
    let mut s = vec![0x80, 0x02];
    s.extend(std::iter::repeat_n(b']', 100_000));
    s.extend(std::iter::repeat_n(b'a', 99_999));
    s.push(b'.');
    let err = decode(&s).unwrap_err();
    assert!(matches!(err, Error::Limit { .. }), "{err}");

    // l = []; l.append(l)
    let cyclic = b"\x80\x04]\x94h\x00a.";
    let err = decode(cyclic).unwrap_err();
    assert!(err.to_string().contains("contains itself"), "{err}");
}

#[test]
fn malformed_streams_are_errors() {
    let cases: &[&[u8]] = &[
        b"",
        b"\x80",
        b"\x80\x06N.",
        b"\x80\x02a.",
        b"\x80\x02(.",
        b"\x80\x02}]Ns.",
        b"\x80\x02h\x05.",
        b"\x80\x02X\xff\xff\xff\xffabc",
        b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN.",
        b"\x80\x02\x8b\xff\xff\xff\xff.",
        b"\x80\x02X\x01\x00\x00\x00\xff.",
        b"\xfe",
        b"I12x\n.",
        b"\x80\x04\x8f.",
        b"\x80\x05\x97.",
    ];
    for stream in cases {
        assert!(decode(stream).is_err(), "{stream:?} should be an error");
    }
}

#[test]
fn values_left_below_the_result_are_ignored_as_cpython_does() {
    assert_eq!(decode(b"\x80\x02]NK\x07.").unwrap(), Value::Int(7));
}

#[test]
fn duplicate_keys_behave_as_python_dicts() {
    // {1: 'a', True: 'b', 1.0: 'c'} collapses to {1: 'c'} in Python, keeping the first key.
    let stream =
        b"\x80\x02}(K\x01X\x01\x00\x00\x00a\x88X\x01\x00\x00\x00bG?\xf0\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00cu.";
    assert_eq!(decode(stream).unwrap(), Value::Dict(vec![(Value::Int(1), Value::Str("c".into()))]));
    let unhashable = b"\x80\x02}]K\x01s.";
    assert!(decode(unhashable).unwrap_err().to_string().contains("unhashable"));
}

#[test]
fn the_memo_sees_containers_as_python_does() {
    // shared = ["same"]; {"a": shared, "b": shared}, with the list filled after it was memoised.
    let stream = b"\x80\x04}\x94(\x8c\x01a\x94]\x94\x8c\x04same\x94a\x8c\x01b\x94h\x02u.";
    let v = decode(stream).unwrap();
    assert_eq!(v.to_json_view(), serde_json::json!({"a": ["same"], "b": ["same"]}));
}

#[test]
fn compressed_joblib_damage_is_an_error() {
    let good = Module::Joblib
        .encode_value(
            &Value::Str("x".repeat(1000)),
            &Module::Joblib.options(&serde_json::json!({"compress": 3}).as_object().unwrap().clone()).unwrap(),
        )
        .unwrap();
    assert_eq!(good[0], 0x78, "a zlib stream, as joblib writes it");
    let mut damaged = good.clone();
    damaged.truncate(good.len() / 2);
    assert!(Module::Joblib.decode_value(&damaged).is_err());
    assert!(Module::Joblib.decode_value(b"BZh91AY&SY").unwrap_err().to_string().contains("bz2"));
}

#[test]
fn a_decompression_bomb_is_refused_at_the_cap() {
    // 256 MiB of zeros compresses to about 1.2 MB: over 200 times its size, past the 100× (or 64 MiB) allowed.
    let zeros = Value::Bytes(vec![0; 256 << 20]);
    let options = Module::Joblib.options(&serde_json::json!({"compress": 1}).as_object().unwrap().clone()).unwrap();
    let bomb = Module::Joblib.encode_value(&zeros, &options).unwrap();
    drop(zeros);
    assert!(Limits::default().decompressed_cap(bomb.len()) < 256 << 20, "{} bytes", bomb.len());
    let err = Module::Joblib.decode_value(&bomb).unwrap_err();
    assert!(matches!(err, Error::Limit { .. }), "{err}");
    let message = err.to_string();
    let cap = Limits::default().decompressed_cap(bomb.len());
    assert!(message.contains(&format!("inflates to more than {cap} bytes")), "{message}");
    assert!(message.contains("Limits::max_decompressed_bytes"), "{message}");

    // Within its cap, the same kind of stream loads; a tighter ceiling refuses it.
    let small = Value::Bytes(vec![0; 1 << 20]);
    let stream = Module::Joblib.encode_value(&small, &options).unwrap();
    assert_eq!(Module::Joblib.decode_value(&stream).unwrap(), small);
    let tight = Limits::default().with_max_decompressed_bytes(1 << 19);
    assert!(matches!(Module::Joblib.decode_value_within(&stream, &tight), Err(Error::Limit { .. })));
}

#[test]
fn decimal_integers_over_cpythons_digit_limit_are_refused_fast() {
    for (opcode, suffix) in [("I", ""), ("L", "L")] {
        let at_limit = format!("{opcode}{}{suffix}\n.", "7".repeat(DEFAULT_MAX_INT_DIGITS));
        assert!(matches!(decode(at_limit.as_bytes()).unwrap(), Value::BigInt(_)), "{opcode}");
        // 5,000,000 digits took 32 s to parse; they are counted and refused, never parsed.
        let huge = format!("{opcode}-{}{suffix}\n.", "7".repeat(5_000_000));
        let err = decode(huge.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("at byte 0 has 5000000 decimal digits, over the limit of 4300"), "{err}");
        let unlimited = Limits::default().with_max_int_digits(0);
        let longer = format!("{opcode}{}{suffix}\n.", "7".repeat(DEFAULT_MAX_INT_DIGITS + 1));
        assert!(Module::Pickle.decode_value_within(longer.as_bytes(), &unlimited).is_ok());
        assert!(decode(longer.as_bytes()).is_err());
    }
}
