//! BitTorrent v2 and hybrid (BEP 52, BEP 47) interop with libtorrent 2.0: for a single file and a folder (an
//! empty file, odd sizes, `foo.txt` beside `foo/bar`, two identical files, a nested folder) at several piece
//! lengths, our `mktorrent --v2` / `--hybrid` and libtorrent's `create_torrent` (tests/support/lt_create.py:
//! `v2_only` for v2, the default flags for a hybrid) must give the same info-hashes, v1 and v2; libtorrent must
//! load ours and agree; and we must read libtorrent's. A hybrid follows libtorrent's layout: files in tree order,
//! a pad file after every file that does not end on a piece boundary (the last one too, in a folder).

mod common;

use std::path::Path;
use std::process::Command;

use common::{SYSTEM_PYTHON, bin, have_libtorrent, run_ok, write_pseudo_random};

/// (v1 hex or None, v2 hex or None)
type Hashes = (Option<String>, Option<String>);

fn hashes_of(value: &serde_json::Value, v1: &str, v2: &str) -> Hashes {
    (value[v1].as_str().map(str::to_owned), value[v2].as_str().map(str::to_owned))
}

fn lt_create(mode: &str, input: &Path, piece_length: u64, out: &Path) -> Hashes {
    let stdout = run_ok(
        Command::new(SYSTEM_PYTHON)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/lt_create.py"))
            .arg(mode)
            .arg(input)
            .arg(piece_length.to_string())
            .arg(out),
    );
    hashes_of(&serde_json::from_str(stdout.trim()).expect("lt_create JSON"), "v1", "v2")
}

/// What libtorrent reads from a torrent file (it checks the piece layers against the roots as it loads).
fn lt_load(torrent: &Path) -> Hashes {
    let script = r#"
import json, sys, libtorrent as lt
h = lt.torrent_info(sys.argv[1]).info_hashes()
print(json.dumps({"v1": str(h.v1) if h.has_v1() else None, "v2": str(h.v2) if h.has_v2() else None}))
"#;
    let stdout = run_ok(Command::new(SYSTEM_PYTHON).args(["-c", script]).arg(torrent));
    hashes_of(&serde_json::from_str(stdout.trim()).expect("libtorrent JSON"), "v1", "v2")
}

fn our_show(torrent: &Path) -> (Hashes, serde_json::Value) {
    let stdout = run_ok(Command::new(bin("mktorrent")).arg("--show").arg(torrent).arg("--json"));
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).expect("our JSON");
    let v1 = (value["version"] != "v2").then(|| value["info_hash"].as_str().expect("hash").to_owned());
    ((v1, value["info_hash_v2"].as_str().map(str::to_owned)), value)
}

fn make_ours(mode: &str, input: &Path, log2: u32, out: &Path) {
    run_ok(
        Command::new(bin("mktorrent"))
            .args([&format!("--{mode}"), "-q", "-d", "--no-created-by", "-l", &log2.to_string(), "-o"])
            .arg(out)
            .arg(input),
    );
}

fn folder(root: &Path) {
    let files: [(&str, usize); 8] = [
        ("a.bin", 40_000),
        ("empty", 0),
        ("foo.txt", 16_385),
        ("foo/bar", 100),
        ("same1", 70_001),
        ("sub/deep/z", 262_144),
        ("sub/y", 16_383),
        ("tail.bin", 99_999),
    ];
    for (index, (path, len)) in files.into_iter().enumerate() {
        write_pseudo_random(&root.join(path), len, index as u64 + 1);
    }
    // Same bytes as same1: the two share one piece-layer entry.
    std::fs::copy(root.join("same1"), root.join("same2")).expect("copy");
}

#[test]
fn v2_and_hybrid_torrents_have_libtorrents_info_hashes() {
    if !have_libtorrent() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let single = dir.path().join("single.bin");
    write_pseudo_random(&single, 100_003, 42);
    let exact = dir.path().join("exact.bin");
    write_pseudo_random(&exact, 65_536, 43);
    let tiny = dir.path().join("tiny.bin");
    write_pseudo_random(&tiny, 1, 44);
    let tree = dir.path().join("tree");
    folder(&tree);

    let mut results = Vec::new();
    for input in [&single, &exact, &tiny, &tree] {
        for log2 in [14u32, 15, 18] {
            for mode in ["v2", "hybrid"] {
                let case = format!("{} {mode} 2^{log2}", input.file_name().and_then(|n| n.to_str()).unwrap_or("?"));
                let ours = dir.path().join(format!("ours-{mode}-{log2}.torrent"));
                let theirs = dir.path().join(format!("lt-{mode}-{log2}.torrent"));
                let _ = std::fs::remove_file(&ours);
                make_ours(mode, input, log2, &ours);
                let expected = lt_create(mode, input, 1 << log2, &theirs);
                let (ours_shown, value) = our_show(&ours);
                let ours_in_lt = lt_load(&ours);
                let (theirs_shown, _) = our_show(&theirs);
                assert!(expected.1.is_some(), "{case}: libtorrent made no v2 hash");
                assert_eq!(expected.0.is_some(), mode == "hybrid", "{case}: libtorrent's v1 part");
                let same = ours_shown == expected && ours_in_lt == expected && theirs_shown == expected;
                eprintln!(
                    "{case:<28} ours {ours_shown:?} libtorrent {expected:?} -> {}",
                    if same { "same" } else { "DIFFERENT" }
                );
                results.push((case.clone(), same));
                assert_eq!(ours_shown, expected, "{case}: our info-hashes differ from libtorrent's");
                assert_eq!(ours_in_lt, expected, "{case}: libtorrent reads other hashes from our file");
                assert_eq!(theirs_shown, expected, "{case}: we read other hashes from libtorrent's file");
                let magnet = value["magnet"].as_str().expect("magnet");
                let v2 = expected.1.as_deref().unwrap_or_default();
                assert!(magnet.contains(&format!("xt=urn:btmh:1220{v2}")), "{magnet}");
                assert_eq!(magnet.contains("xt=urn:btih:"), mode == "hybrid", "{magnet}");
            }
        }
    }
    assert!(results.iter().all(|(_, same)| *same));
}

#[test]
fn hybrid_data_verifies_against_its_v1_pieces_with_pad_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    folder(&tree);
    let torrent = dir.path().join("tree.torrent");
    make_ours("hybrid", &tree, 15, &torrent);
    let stdout = run_ok(Command::new(bin("mktorrent")).arg("--verify").arg(&torrent).arg("--dir").arg(dir.path()));
    assert!(stdout.contains("0 of 9 files bad"), "{stdout}");
    assert!(!stdout.contains(".pad"), "pad files are not reported: {stdout}");
}

#[test]
fn v1_only_readers_refuse_v2_only_torrents_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f.bin");
    write_pseudo_random(&file, 50_000, 7);
    let torrent = dir.path().join("f.torrent");
    make_ours("v2", &file, 14, &torrent);
    let output = common::run(Command::new(bin("mktorrent")).arg("--verify").arg(&torrent).arg("--dir").arg(dir.path()));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("v2-only"), "{output:?}");
}
