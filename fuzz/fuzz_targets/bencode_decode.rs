//! The shared bencode decoder: any bytes decode or fail with an error, never a panic, a stack overflow or a huge
//! allocation; what decodes re-encodes canonically to bytes that decode and encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((value, used)) = bencode::decode(data) {
        assert!(used <= data.len());
        let bytes = value.to_bytes();
        // Keys may come unsorted, so the values differ in order only: their canonical encodings agree.
        let again = bencode::decode_exact(&bytes).expect("a canonical encoding decodes");
        assert_eq!(again.to_bytes(), bytes, "canonical encoding is stable");
    }
});
