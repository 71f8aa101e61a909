use proptest::prelude::*;

use super::*;

#[test]
fn golden_values_decode_and_encode_back() {
    // BEP 10's example extended handshake.
    let handshake = b"d1:md11:LT_metadatai1e7:\xc2\xb5T_PEXi2ee1:pi6881e1:v13:\xc2\xb5Torrent 1.2e";
    let value = decode_exact(handshake).expect("valid");
    let m = value.get(b"m").expect("m");
    assert_eq!(m.get(b"LT_metadata").and_then(Value::as_int), Some(1));
    assert_eq!(m.get("\u{b5}T_PEX".as_bytes()).and_then(Value::as_int), Some(2));
    assert_eq!(value.get(b"p").and_then(Value::as_int), Some(6881));
    assert_eq!(value.get(b"v").and_then(Value::as_str), Some("\u{b5}Torrent 1.2"));
    assert_eq!(value.to_bytes(), handshake, "already canonical, so it encodes to the same bytes");

    let scalars = decode_exact(b"li-42e0:4:spami9223372036854775807ee").expect("valid");
    assert_eq!(
        scalars,
        Value::List(vec![Value::Int(-42), Value::Bytes(b""), Value::Bytes(b"spam"), Value::Int(i64::MAX)])
    );
}

#[test]
fn unsorted_keys_are_read_in_input_order_and_written_sorted() {
    let value = decode_exact(b"d1:bi2e1:ai1ee").expect("unsorted input is accepted");
    let keys: Vec<&[u8]> = value.as_dict().expect("dict").iter().map(|(key, _)| *key).collect();
    assert_eq!(keys, [&b"b"[..], b"a"]);
    assert_eq!(value.to_bytes(), b"d1:ai1e1:bi2ee");
}

#[test]
fn decode_reports_the_bytes_it_took() {
    let message = b"d8:msg_typei1e5:piecei0e10:total_sizei3eeABC";
    let (value, used) = decode(message).expect("valid");
    assert_eq!(value.get(b"total_size").and_then(Value::as_int), Some(3));
    assert_eq!(&message[used..], b"ABC");
    assert_eq!(decode_exact(message), Err(BencodeError::TrailingData(3)));
}

#[test]
fn hostile_input_is_an_error_not_a_crash() {
    assert_eq!(decode_exact(b"d1:ai1e1:ai2ee"), Err(BencodeError::DuplicateKey(7)));
    let bomb = vec![b'l'; 1_000_000];
    assert!(matches!(decode(&bomb), Err(BencodeError::TooDeep(_))));
    assert!(matches!(decode(b"99999999999:x"), Err(BencodeError::StringTooLong { .. })));
    assert!(matches!(decode(b"i-0e"), Err(BencodeError::BadInteger(0))));
    assert!(matches!(decode(b"di1ei2ee"), Err(BencodeError::KeyNotString(1))));
    // Many keys, each unique: decoded in near-linear time.
    let mut many = b"d".to_vec();
    for i in 0..50_000u32 {
        let key = format!("{i:08}");
        many.extend_from_slice(format!("8:{key}i0e").as_bytes());
    }
    many.push(b'e');
    assert_eq!(decode_exact(&many).expect("valid").as_dict().map(<[_]>::len), Some(50_000));
}

fn any_value() -> impl Strategy<Value = Value<'static>> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..12)
            .prop_map(|bytes| Value::Bytes(Box::leak(bytes.into_boxed_slice()))),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::btree_map(proptest::collection::vec(any::<u8>(), 0..6), inner, 0..6).prop_map(
                |entries| Value::Dict(
                    entries.into_iter().map(|(key, value)| (&*Box::leak(key.into_boxed_slice()), value)).collect()
                )
            ),
        ]
    })
}

proptest! {
    #[test]
    fn canonical_encodings_decode_to_the_same_value(value in any_value()) {
        let bytes = value.to_bytes();
        let decoded = decode_exact(&bytes).expect("our own encoding decodes");
        prop_assert_eq!(&decoded, &value);
        prop_assert_eq!(decoded.to_bytes(), bytes);
    }

    #[test]
    fn any_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok((value, used)) = decode(&bytes) {
            prop_assert!(used <= bytes.len());
            // What decodes re-encodes to bytes that decode and encode to the same bytes (keys may have come
            // unsorted, so only the canonical forms are compared).
            let bytes = value.to_bytes();
            prop_assert_eq!(decode_exact(&bytes).expect("re-encoding decodes").to_bytes(), bytes);
        }
    }
}
