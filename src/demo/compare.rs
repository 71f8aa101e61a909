//! Byte-for-byte comparison of a downloaded copy with the original, file by file, in constant memory.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use metainfo::Info;

const CHUNK: usize = 1 << 20;

/// Compares every file of the torrent: `original` is the shared file or folder itself, `dir` the download
/// folder holding the copy. Returns what differs (empty when the copy is identical).
pub fn copy_differences(info: &Info, original: &Path, dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    for (index, file) in info.files.iter().enumerate() {
        let mut source = PathBuf::from(original);
        source.extend(&file.path);
        let Some(copy) = info.relative_path(index).map(|relative| dir.join(relative)) else { continue };
        match same_bytes(&source, &copy, file.length) {
            Ok(None) => {}
            Ok(Some(problem)) => problems.push(format!("{}: {problem}", copy.display())),
            Err(err) => problems.push(format!("{}: {err}", copy.display())),
        }
    }
    problems
}

/// `None` when both files hold exactly `length` identical bytes; else what differs.
fn same_bytes(original: &Path, copy: &Path, length: u64) -> std::io::Result<Option<String>> {
    let copy_length = match std::fs::metadata(copy) {
        Ok(metadata) => metadata.len(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Some("missing".into())),
        Err(err) => return Err(err),
    };
    if copy_length != length {
        return Ok(Some(format!("{copy_length} bytes instead of {length}")));
    }
    let (mut a, mut b) = (File::open(original)?, File::open(copy)?);
    let (mut buffer_a, mut buffer_b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut offset = 0u64;
    loop {
        let got_a = read_full(&mut a, &mut buffer_a)?;
        let got_b = read_full(&mut b, &mut buffer_b)?;
        if let Some(at) = buffer_a[..got_a].iter().zip(&buffer_b[..got_b]).position(|(x, y)| x != y) {
            return Ok(Some(format!("differs from the original at byte {}", offset + at as u64)));
        }
        if got_a != got_b {
            return Ok(Some(format!("ends at byte {} where the original does not", offset + got_a.min(got_b) as u64)));
        }
        if got_a == 0 {
            return Ok(None);
        }
        offset += got_a as u64;
    }
}

/// Reads until `buffer` is full or the file ends; returns the bytes read.
fn read_full(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    #[test]
    fn finds_the_first_differing_byte_and_wrong_lengths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            path
        };
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut changed = big.clone();
        changed[2_500_000] ^= 1;
        let (original, same, other) = (write("a", &big), write("b", &big), write("c", &changed));
        let short = write("d", &big[..10]);
        let len = big.len() as u64;
        assert_eq!(same_bytes(&original, &same, len).expect("read"), None);
        assert_eq!(
            same_bytes(&original, &other, len).expect("read").as_deref(),
            Some("differs from the original at byte 2500000")
        );
        assert_eq!(same_bytes(&original, &short, len).expect("read").as_deref(), Some("10 bytes instead of 3000000"));
        let missing = dir.path().join("none");
        assert_eq!(same_bytes(&original, &missing, len).expect("read").as_deref(), Some("missing"));
    }
}
