//! Piece hashing on all cores: the byte stream of one or many files, cut into pieces, SHA-1 each.
//!
//! The files come through a [`Feed`], which a folder walk may still be filling while the hashers
//! work: a worker claims the next batch of pieces once the files found so far cover it. Workers take
//! batches of consecutive pieces (so each one reads the disk sequentially and the kernel's
//! read-ahead works), read them with positional reads (`read_exact_at`, no shared file cursor), and hash
//! as they read. Reads go through a buffer small enough to stay in the core's L2 cache, so the bytes
//! copied out of the page cache are hashed while still hot. Pieces are hashed sixteen at a time in AVX-512
//! lanes (`sha1_lanes`), or two at a time with the SHA extensions (`sha1_pair`), or one at a time: whichever
//! the running CPU does fastest, as measured once per process.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use sha1::{Digest, Sha1};

pub(crate) use crate::feed::Feed;
use crate::feed::Located;
use crate::sha1_lanes::{self, LaneHasher};
use crate::sha1_pair::{self, PairHasher};

/// One file of the byte stream, in piece order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    pub path: PathBuf,
    pub length: u64,
}

/// A piece whose bytes could not be read: the file is missing, unreadable, or shorter than listed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The hash of one piece, or why its bytes could not be read.
pub type PieceResult = Result<[u8; 20], ReadError>;

/// Bytes read and hashed per call to `read_exact_at`. Measured on the 2-core VM with a warm page
/// cache: reads of up to 128 KiB copy at 11-13 GB/s, reads of 256 KiB and more at about 2 GB/s;
/// 64 KiB measured a little faster than 128 KiB end to end
/// (the copy then costs as much CPU as the hashing). Small reads also keep the bytes in L2 for SHA-1.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes of consecutive pieces a worker claims at a time.
const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// How [`hash_pieces`] treats a piece it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnReadError {
    /// Stop all workers at the first error (making a torrent: the result is useless anyway).
    Stop,
    /// Record the error for that piece and go on (checking existing data: missing files are normal).
    Continue,
}

/// Whether SHA-1 pieces are hashed two at a time on this CPU (measured once: see `sha1_pair::preferred`).
pub fn sha1_in_pairs() -> bool {
    sha1_pair::preferred()
}

/// Hashes every piece of the stream formed by `files`, on `threads` threads, calling `progress` with the
/// number of bytes finished after each batch. The result has one entry per piece; with
/// [`OnReadError::Stop`] pieces after the first failure may be left as that failure's kind of error.
pub fn hash_pieces(
    files: &[DataFile],
    piece_length: u64,
    threads: usize,
    on_error: OnReadError,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<PieceResult> {
    hash_pieces_until(files, piece_length, threads, on_error, progress, &|| false)
}

/// As [`hash_pieces`], stopping once `stop` says so (it is asked after each batch): the pieces not hashed then
/// are errors ("not hashed").
pub fn hash_pieces_until(
    files: &[DataFile],
    piece_length: u64,
    threads: usize,
    on_error: OnReadError,
    progress: &(dyn Fn(u64) + Sync),
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<PieceResult> {
    let feed = Feed::listing_only();
    for file in files {
        feed.push(file.clone(), None);
    }
    feed.close(true);
    hash_feed(&feed, piece_length, threads, on_error, progress, stop)
}

/// Bytes in one batch of whole pieces.
pub(crate) fn batch_bytes(piece_length: u64) -> u64 {
    // At least two pieces, so that they can be hashed as a pair, or sixteen for the AVX-512 lanes.
    let pieces = if sha1_lanes::preferred() { sha1_lanes::LANES as u64 } else { 2 };
    (BATCH_BYTES / piece_length).max(pieces) * piece_length
}

/// Hashes the pieces of `feed` as its files arrive, until it is closed (or abandoned). See
/// [`hash_pieces`]; a feed filled during hashing must have been made with this piece length.
pub(crate) fn hash_feed(
    feed: &Feed,
    piece_length: u64,
    threads: usize,
    on_error: OnReadError,
    progress: &(dyn Fn(u64) + Sync),
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<PieceResult> {
    if piece_length == 0 {
        return Vec::new();
    }
    let batch_bytes = batch_bytes(piece_length);
    let worker = || {
        let _stop_all = AbandonOnPanic(feed);
        let chunk = READ_CHUNK.min(usize::try_from(piece_length).unwrap_or(READ_CHUNK));
        // Pieces go two at a time through the pair hasher when the CPU has it; each of the pair has
        // its own reader and buffer, since they read different parts of the stream.
        let mut pair = [Reader { feed, current: None }, Reader { feed, current: None }];
        let mut buffers = [vec![0u8; chunk], vec![0u8; chunk]];
        let lanes = piece_length.is_multiple_of(64) && sha1_lanes::preferred();
        let pairs = !lanes && piece_length.is_multiple_of(64) && sha1_pair::preferred();
        // Sixteen pieces at once through the AVX-512 lanes: a reader each, and one buffer of sixteen spans.
        let mut sixteen: Vec<Reader<'_>> = Vec::new();
        let mut spans = Vec::new();
        if lanes {
            sixteen = (0..sha1_lanes::LANES).map(|_| Reader { feed, current: None }).collect();
            spans = vec![0u8; sha1_lanes::LANES * chunk];
        }
        let sixteen_bytes = sha1_lanes::LANES as u64 * piece_length;
        let mut done = Vec::new();
        while let Some((start, end)) = feed.claim(batch_bytes) {
            let mut hashes = Vec::new();
            let mut offset = start;
            while offset < end {
                let before = hashes.len();
                if lanes && offset + sixteen_bytes <= end {
                    hashes.extend(hash_sixteen(&mut sixteen, offset, piece_length, &mut spans, &mut buffers[0]));
                    offset += sixteen_bytes;
                } else if pairs && offset + 2 * piece_length <= end {
                    hashes.extend(hash_pair(&mut pair, offset, piece_length, &mut buffers));
                    offset += 2 * piece_length;
                } else {
                    let piece_end = (offset + piece_length).min(end);
                    hashes.push(pair[0].hash_range(offset, piece_end, &mut buffers[0]));
                    offset = piece_end;
                }
                if on_error == OnReadError::Stop && hashes[before..].iter().any(Result::is_err) {
                    feed.abandon();
                }
            }
            progress(end - start);
            done.push((start / piece_length, hashes));
            if stop() {
                // Batches are claimed in order and each claimed one is finished: the results stay a prefix.
                feed.abandon();
            }
        }
        done
    };

    // A feed already complete needs no more workers than it has batches.
    let known_batches = feed.closed_total().map(|total| total.div_ceil(batch_bytes));
    let threads = known_batches.map_or(threads, |batches| threads.min(usize::try_from(batches).unwrap_or(1))).max(1);
    let mut batches: Vec<(u64, Vec<PieceResult>)> = if threads == 1 {
        worker()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
            handles
                .into_iter()
                .flat_map(|handle| match handle.join() {
                    Ok(done) => done,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        })
    };
    batches.sort_unstable_by_key(|(first, _)| *first);

    let piece_count = usize::try_from(feed.total().div_ceil(piece_length)).unwrap_or(usize::MAX);
    let mut results: Vec<PieceResult> = Vec::with_capacity(piece_count);
    for (_, hashes) in batches {
        results.extend(hashes);
    }
    // Batches skipped after a stop: mark their pieces with the first error's kind so the count is right.
    while results.len() < piece_count {
        let source = results
            .iter()
            .find_map(|result| result.as_ref().err())
            .map_or_else(|| io::Error::other("not hashed"), |err| io::Error::new(err.source.kind(), err.to_string()));
        results.push(Err(ReadError { path: PathBuf::new(), source }));
    }
    results
}

/// Hashes the two pieces of `piece_length` bytes from `start` together.
fn hash_pair(
    readers: &mut [Reader<'_>; 2],
    start: u64,
    piece_length: u64,
    buffers: &mut [Vec<u8>; 2],
) -> [PieceResult; 2] {
    let [first, second] = readers;
    let [first_buffer, second_buffer] = buffers;
    let second_start = start + piece_length;
    let hash_apart = |first: &mut Reader<'_>, second: &mut Reader<'_>, a: &mut [u8], b: &mut [u8]| {
        [first.hash_range(start, second_start, a), second.hash_range(second_start, second_start + piece_length, b)]
    };
    let Some(mut hasher) = PairHasher::new() else {
        return hash_apart(first, second, first_buffer, second_buffer);
    };
    let mut done = 0;
    while done < piece_length {
        let len = first_buffer.len().min(usize::try_from(piece_length - done).unwrap_or(usize::MAX));
        let (a, b) = (&mut first_buffer[..len], &mut second_buffer[..len]);
        if first.read_at(start + done, a).is_err() || second.read_at(second_start + done, b).is_err() {
            // Hash them apart, so that the error lands on the piece it belongs to.
            return hash_apart(first, second, first_buffer, second_buffer);
        }
        hasher.update(a, b);
        done += len as u64;
    }
    hasher.finish().map(Ok)
}

/// Hashes the sixteen pieces of `piece_length` bytes from `start` together, reading the same span of each into
/// its slot of `spans`; `spare` is for hashing them apart when a read fails, so that the error lands on its piece.
fn hash_sixteen(
    readers: &mut [Reader<'_>],
    start: u64,
    piece_length: u64,
    spans: &mut [u8],
    spare: &mut [u8],
) -> Vec<PieceResult> {
    let chunk = spans.len() / sha1_lanes::LANES;
    let piece_start = |lane: usize| start + lane as u64 * piece_length;
    let mut apart = |readers: &mut [Reader<'_>]| -> Vec<PieceResult> {
        (0..sha1_lanes::LANES)
            .map(|lane| readers[0].hash_range(piece_start(lane), piece_start(lane) + piece_length, spare))
            .collect()
    };
    let Some(mut hasher) = LaneHasher::new() else { return apart(readers) };
    let mut done = 0;
    while done < piece_length {
        let len = chunk.min(usize::try_from(piece_length - done).unwrap_or(usize::MAX));
        for (lane, reader) in readers.iter_mut().enumerate() {
            if reader.read_at(piece_start(lane) + done, &mut spans[lane * len..(lane + 1) * len]).is_err() {
                return apart(readers);
            }
        }
        hasher.update(&spans[..sha1_lanes::LANES * len], len);
        done += len as u64;
    }
    hasher.finish().into_iter().map(Ok).collect()
}

/// Stops the walk and the other hashers if a hasher panics, so none of them waits forever.
struct AbandonOnPanic<'a>(&'a Feed);

impl Drop for AbandonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.abandon();
        }
    }
}

/// One worker's view of the stream, keeping the file it last read open.
struct Reader<'a> {
    feed: &'a Feed,
    current: Option<(Located, Arc<File>)>,
}

impl Reader<'_> {
    fn hash_range(&mut self, start: u64, end: u64, buffer: &mut [u8]) -> Result<[u8; 20], ReadError> {
        let mut hasher = Sha1::new();
        let mut offset = start;
        while offset < end {
            let len = buffer.len().min(usize::try_from(end - offset).unwrap_or(usize::MAX));
            let chunk = &mut buffer[..len];
            self.read_at(offset, chunk)?;
            hasher.update(&*chunk);
            offset += len as u64;
        }
        Ok(hasher.finalize().into())
    }

    /// Fills `buf` with the stream's bytes from `offset`, crossing file boundaries as needed.
    fn read_at(&mut self, mut offset: u64, mut buf: &mut [u8]) -> Result<(), ReadError> {
        while !buf.is_empty() {
            let holds_offset =
                |(file, _): &(Located, Arc<File>)| file.start <= offset && offset < file.start + file.length;
            let (file, handle) = match self.current.take() {
                Some(current) if holds_offset(&current) => self.current.insert(current),
                _ => {
                    let Some(mut file) = self.feed.locate(offset) else {
                        return Err(ReadError { path: PathBuf::new(), source: io::ErrorKind::UnexpectedEof.into() });
                    };
                    let handle = match file.handle.take() {
                        Some(handle) => handle,
                        None => Arc::new(
                            File::open(&file.path).map_err(|source| ReadError { path: file.path.clone(), source })?,
                        ),
                    };
                    self.current.insert((file, handle))
                }
            };
            let within = offset - file.start;
            let len = buf.len().min(usize::try_from(file.length - within).unwrap_or(usize::MAX));
            let (now, rest) = buf.split_at_mut(len);
            handle.read_exact_at(now, within).map_err(|source| {
                let source = if source.kind() == io::ErrorKind::UnexpectedEof {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("shorter than its listed {} bytes (changed while reading?)", file.length),
                    )
                } else {
                    source
                };
                ReadError { path: file.path.clone(), source }
            })?;
            if within + len as u64 == file.length {
                self.feed.release(file.index);
            }
            buf = rest;
            offset += len as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use sha1::{Digest, Sha1};

    use super::{DataFile, OnReadError, hash_pieces};

    fn write_files(dir: &std::path::Path, contents: &[&[u8]]) -> Vec<DataFile> {
        contents
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let path = dir.join(format!("f{i}"));
                std::fs::write(&path, bytes).expect("write test file");
                DataFile { path, length: bytes.len() as u64 }
            })
            .collect()
    }

    fn expected(stream: &[u8], piece_length: usize) -> Vec<[u8; 20]> {
        stream.chunks(piece_length).map(|piece| Sha1::digest(piece).into()).collect()
    }

    #[test]
    fn pieces_run_across_files_including_empty_ones_on_any_thread_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let parts: Vec<Vec<u8>> = [5usize, 0, 17, 0, 0, 64, 1, 33]
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|b| (b * 7 + i) as u8).collect())
            .collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let files = write_files(dir.path(), &refs);
        let stream: Vec<u8> = parts.concat();
        for piece_length in [1u64, 2, 16, 32, 64, 1024] {
            for threads in [1, 2, 3] {
                let done = AtomicU64::new(0);
                let got: Vec<[u8; 20]> = hash_pieces(&files, piece_length, threads, OnReadError::Stop, &|n| {
                    done.fetch_add(n, Ordering::Relaxed);
                })
                .into_iter()
                .collect::<Result<_, _>>()
                .expect("all readable");
                assert_eq!(got, expected(&stream, piece_length as usize), "piece {piece_length}, {threads} threads");
                assert_eq!(done.load(Ordering::Relaxed), stream.len() as u64);
            }
        }
    }

    #[test]
    fn large_pieces_are_hashed_in_chunks_correctly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big: Vec<u8> = (0..3 * 1024 * 1024 + 123).map(|i: u32| (i % 251) as u8).collect();
        let files = write_files(dir.path(), &[&big[..1_000_000], &big[1_000_000..]]);
        let got: Vec<[u8; 20]> = hash_pieces(&files, 1 << 20, 2, OnReadError::Stop, &|_| {})
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("readable");
        assert_eq!(got, expected(&big, 1 << 20));
    }

    #[test]
    fn sixteen_pieces_at_a_time_cross_files_and_keep_errors_on_their_pieces() {
        // Enough pieces for the AVX-512 lanes (16 at a time) where the CPU prefers them, across files of
        // uneven lengths; then the second file goes missing.
        let dir = tempfile::tempdir().expect("tempdir");
        for piece_length in [64u64, 1024, 16_384] {
            let lengths = [piece_length as usize * 7 + 5, piece_length as usize * 20 + 3, piece_length as usize * 30];
            let parts: Vec<Vec<u8>> = lengths
                .iter()
                .enumerate()
                .map(|(i, &n)| (0..n).map(|b| (b * 31 + b / 7 + i) as u8).collect())
                .collect();
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            let folder = dir.path().join(piece_length.to_string());
            std::fs::create_dir_all(&folder).expect("mkdir");
            let files = write_files(&folder, &refs);
            let stream = parts.concat();
            for threads in [1, 2] {
                let got: Vec<[u8; 20]> = hash_pieces(&files, piece_length, threads, OnReadError::Stop, &|_| {})
                    .into_iter()
                    .collect::<Result<_, _>>()
                    .expect("all readable");
                assert_eq!(got, expected(&stream, piece_length as usize), "piece {piece_length}, {threads} threads");
            }
            std::fs::remove_file(&files[1].path).expect("remove");
            let results = hash_pieces(&files, piece_length, 2, OnReadError::Continue, &|_| {});
            let (first, second) = (lengths[0] as u64, (lengths[0] + lengths[1]) as u64);
            for (index, result) in results.iter().enumerate() {
                let (start, end) = (index as u64 * piece_length, (index as u64 + 1) * piece_length);
                let touches_missing = start < second && end > first;
                assert_eq!(result.is_err(), touches_missing, "piece {index} of {piece_length} bytes");
                if let Ok(hash) = result {
                    assert_eq!(*hash, expected(&stream, piece_length as usize)[index]);
                }
            }
        }
    }

    #[test]
    fn a_missing_or_short_file_fails_only_the_pieces_it_touches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files = write_files(dir.path(), &[&[1u8; 8], &[2u8; 8], &[3u8; 8]]);
        std::fs::remove_file(&files[1].path).expect("remove");
        files[2].length = 10; // two bytes more than on disk
        let results = hash_pieces(&files, 4, 2, OnReadError::Continue, &|_| {});
        let readable: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(readable, [true, true, false, false, true, true, false]);
        let short = results[6].as_ref().expect_err("short file");
        assert!(short.to_string().contains("shorter than its listed 10 bytes"), "{short}");
        assert_eq!(short.path, files[2].path);
    }

    #[test]
    fn pieces_hashed_in_pairs_keep_their_errors_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bodies: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 64]).collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let files = write_files(dir.path(), &refs);
        std::fs::remove_file(&files[3].path).expect("remove");
        let results = hash_pieces(&files, 64, 1, OnReadError::Continue, &|_| {});
        let readable: Vec<bool> = results.iter().map(Result::is_ok).collect();
        assert_eq!(readable, [true, true, true, false, true, true]);
        assert_eq!(results[2].as_ref().expect("readable"), &<[u8; 20]>::from(Sha1::digest([2u8; 64])));
        assert_eq!(results[3].as_ref().expect_err("missing").path, files[3].path);
    }

    #[test]
    fn stop_mode_reports_the_failing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = vec![DataFile { path: dir.path().join("absent"), length: 100 }];
        let results = hash_pieces(&files, 16, 2, OnReadError::Stop, &|_| {});
        assert_eq!(results.len(), 7);
        let first = results.iter().find_map(|r| r.as_ref().err()).expect("an error");
        assert_eq!(first.source.kind(), std::io::ErrorKind::NotFound);
    }
}
