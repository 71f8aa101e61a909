//! Fuzz the KRPC codec (BEP 5): decoding an arbitrary datagram must never panic and must keep its caps, and
//! whatever decodes must re-encode to bytes no longer than the input (so the re-encoding still fits the datagram
//! cap) that decode to the same message and re-encode to the same bytes. What does not decode goes through
//! `query_transaction_id`, as a node answering a malformed query with error 203 would.

#![no_main]

use dht::krpc::{Body, MAX_DATAGRAM_LEN, MAX_VALUES, Message, query_transaction_id};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok((message, skipped)) = Message::decode(data) else {
        if let Some(id) = query_transaction_id(data) {
            assert!((1..=16).contains(&id.as_bytes().len()));
        }
        return;
    };
    assert!(data.len() <= MAX_DATAGRAM_LEN);
    match &message.body {
        Body::Response(response) => {
            let kept = response.values.as_ref().map_or(0, Vec::len);
            assert!(kept <= MAX_VALUES);
            assert!(skipped == 0 || kept == MAX_VALUES);
        }
        Body::Query(_) | Body::Error(_) => assert_eq!(skipped, 0),
    }
    let bytes = message.to_bytes();
    assert!(bytes.len() <= data.len(), "re-encoding grew from {} to {} bytes", data.len(), bytes.len());
    let (again, skipped) = Message::decode(&bytes).expect("own encoding decodes");
    assert_eq!(skipped, 0);
    assert_eq!(again, message);
    assert_eq!(again.to_bytes(), bytes, "encoding is canonical");
});
