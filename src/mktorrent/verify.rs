//! `mktorrent --verify FILE.torrent --dir DIR`: hash the data on disk and report file by file, like
//! `imdl torrent verify`. A file is bad when it is missing, has the wrong size, or any piece that
//! covers part of it fails its hash (a piece spanning two files blames both). A v2-only torrent's pieces are
//! checked against each file's merkle tree (the peer's own check, so both agree on what is good), each file
//! followed by the zeros that align the next one to a piece.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use metainfo::hashing::{DataFile, OnReadError, hash_pieces};
use metainfo::{FileEntry, Torrent};
use serde_json::json;

use super::Args;
use crate::cli;

#[derive(Debug, PartialEq, Eq)]
enum FileStatus {
    Ok,
    Missing,
    WrongSize { actual: u64 },
    Corrupt { bad: usize, of: usize },
}

impl FileStatus {
    fn describe(&self, expected: u64) -> String {
        match self {
            FileStatus::Ok => "ok".to_owned(),
            FileStatus::Missing => "missing".to_owned(),
            FileStatus::WrongSize { actual } => format!("wrong size: {actual} bytes, expected {expected}"),
            FileStatus::Corrupt { bad, of } => format!("corrupt: {bad} of {of} pieces fail their hash"),
        }
    }
}

pub fn run(torrent: &Torrent, dir: &Path, threads: usize, args: &Args) -> anyhow::Result<ExitCode> {
    let info = &torrent.info;
    // A v2-only torrent's files with the zeros v2 puts after each; a v1 or hybrid torrent's own list.
    let v2_layout = if torrent.has_v1() { None } else { peer::v2::layout(torrent) };
    let entries: &[FileEntry] = v2_layout.as_ref().map_or(&info.files, |(entries, _)| entries);
    // Pad files (a hybrid's BEP 47 ones, v2's implicit ones) are zeros that are never stored: /dev/zero reads as them.
    let files: Vec<DataFile> = entries
        .iter()
        .map(|entry| DataFile {
            path: if entry.pad {
                Path::new("/dev/zero").to_owned()
            } else {
                let mut path = dir.join(&info.name);
                path.extend(&entry.path);
                path
            },
            length: entry.length,
        })
        .collect();

    let bar = if args.quiet || args.json || !cli::stderr_is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(info.total_length());
        if let Ok(style) =
            ProgressStyle::with_template("verifying {bar:40} {binary_bytes}/{binary_total_bytes} eta {eta}")
        {
            bar.set_style(style);
        }
        bar
    };
    let threads = if threads == 0 { std::thread::available_parallelism().map_or(1, usize::from) } else { threads };
    let piece_ok: Vec<bool> = if v2_layout.is_some() {
        let storage = peer::storage::Storage::new(torrent, dir)?;
        let done = std::sync::atomic::AtomicU64::new(0);
        let have = storage.check(threads, |total| {
            let before = done.swap(total, std::sync::atomic::Ordering::Relaxed);
            bar.inc(total.saturating_sub(before));
        });
        (0..storage.num_pieces()).map(|index| have.has(index)).collect()
    } else {
        let results = hash_pieces(&files, info.piece_length, threads, OnReadError::Continue, &|bytes| bar.inc(bytes));
        results
            .iter()
            .zip(info.pieces.iter())
            .map(|(result, expected)| matches!(result, Ok(hash) if hash == expected))
            .collect()
    };
    bar.finish_and_clear();

    let mut offset = 0u64;
    let mut statuses = Vec::with_capacity(files.len());
    for (file, entry) in files.iter().zip(entries) {
        let status = match std::fs::metadata(&file.path) {
            _ if entry.pad => FileStatus::Ok,
            Err(_) => FileStatus::Missing,
            Ok(meta) if !meta.is_file() => FileStatus::Missing,
            Ok(meta) if meta.len() != file.length => FileStatus::WrongSize { actual: meta.len() },
            Ok(_) if file.length == 0 => FileStatus::Ok,
            Ok(_) => {
                let first = (offset / info.piece_length) as usize;
                let last = ((offset + file.length - 1) / info.piece_length) as usize;
                let bad = piece_ok[first..=last].iter().filter(|ok| !**ok).count();
                if bad == 0 { FileStatus::Ok } else { FileStatus::Corrupt { bad, of: last - first + 1 } }
            }
        };
        offset += file.length;
        statuses.push(status);
    }

    // Pad files are not reported: nothing of them is on disk.
    let (files, statuses): (Vec<DataFile>, Vec<FileStatus>) =
        files.into_iter().zip(statuses).zip(entries).filter(|(_, entry)| !entry.pad).map(|(pair, _)| pair).unzip();
    let good_pieces = piece_ok.iter().filter(|ok| **ok).count();
    let bad_files = statuses.iter().filter(|status| **status != FileStatus::Ok).count();
    let mut out = std::io::stdout().lock();
    if args.json {
        let report: Vec<_> = files
            .iter()
            .zip(&statuses)
            .map(|(file, status)| {
                json!({ "path": file.path.to_string_lossy(), "ok": *status == FileStatus::Ok, "status": status.describe(file.length) })
            })
            .collect();
        let value = json!({
            "info_hash": torrent.info_hash.to_string(),
            "pieces": piece_ok.len(),
            "pieces_ok": good_pieces,
            "files": report,
            "ok": bad_files == 0,
        });
        writeln!(out, "{value}")?;
    } else if !args.quiet {
        for (file, status) in files.iter().zip(&statuses) {
            let mark = if *status == FileStatus::Ok { "ok " } else { "BAD" };
            writeln!(out, "{mark}  {}  {}", file.path.display(), status.describe(file.length))?;
        }
        writeln!(out, "{good_pieces} of {} pieces ok; {bad_files} of {} files bad", piece_ok.len(), files.len())?;
    }
    if bad_files == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        drop(out);
        eprintln!("mktorrent: error: {bad_files} of {} files do not match {}", files.len(), info.name);
        Ok(ExitCode::FAILURE)
    }
}
