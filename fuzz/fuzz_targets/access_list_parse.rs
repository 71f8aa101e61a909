//! The tracker's access list files (`--allow`, `--deny`): any bytes are read or refused with the number of a line
//! that is really there, never a panic; and the result agrees with a plain model of the format (strip the `#`
//! comment and the whitespace, then 40 or 64 hex digits, of which the first 40 count).
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tracker::access::AccessList;

/// The model: the set of hashes, or the first bad line (1-based).
fn model(data: &[u8]) -> Result<HashSet<[u8; 20]>, usize> {
    let mut hashes = HashSet::new();
    for (index, raw) in data.split(|&byte| byte == b'\n').enumerate() {
        let line = raw.split(|&byte| byte == b'#').next().unwrap_or_default().trim_ascii();
        if line.is_empty() {
            continue;
        }
        let Ok(text) = std::str::from_utf8(line) else { return Err(index + 1) };
        if (text.len() != 40 && text.len() != 64) || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(index + 1);
        }
        let mut hash = [0u8; 20];
        for (at, byte) in hash.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * at..2 * at + 2], 16).map_err(|_| index + 1)?;
        }
        hashes.insert(hash);
    }
    Ok(hashes)
}

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|&byte| byte == b'\n').count();
    match (AccessList::parse(data), model(data)) {
        (Ok(list), Ok(hashes)) => {
            assert_eq!(list.len(), hashes.len());
            assert!(hashes.iter().all(|hash| list.contains(hash)));
        }
        (Err(err), Err(line)) => {
            assert_eq!(err.line, line, "{err}");
            assert!((1..=lines).contains(&err.line));
        }
        (parsed, modelled) => panic!("parser {:?} and model {modelled:?} disagree", parsed.map(|list| list.len())),
    }
});
