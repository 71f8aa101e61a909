//! Interop of torrent files with the reference tools: Debian's mktorrent must produce the same info-hash
//! as ours for the same content and options; libtorrent must load ours and agree on hash, files and
//! piece count; and we must read torrents made by mktorrent, libtorrent and transmission-create with the
//! info-hash libtorrent reports, including non-canonical ones. BEP 5 `nodes`: libtorrent reads the ones we write,
//! we read the ones it writes, and both write the same bytes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    SYSTEM_PYTHON, bin, have_debian_mktorrent, have_libtorrent, have_transmission_create, run_ok, write_pseudo_random,
};

const ANNOUNCE: &str = "udp://127.0.0.1:6969/announce";

/// What libtorrent says of a torrent file.
#[derive(Debug, PartialEq, Eq)]
struct LibtorrentView {
    info_hash: String,
    pieces: u64,
    files: Vec<(String, u64)>,
    /// BEP 5 DHT nodes.
    nodes: Vec<(String, u64)>,
}

/// `[[host, port], ...]` as both sides print them.
fn nodes_of(value: &serde_json::Value) -> Vec<(String, u64)> {
    value
        .as_array()
        .expect("nodes")
        .iter()
        .map(|node| (node[0].as_str().expect("host").to_owned(), node[1].as_u64().expect("port")))
        .collect()
}

fn libtorrent_view(torrent: &Path) -> LibtorrentView {
    let script = r#"
import json, sys, libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
fs = ti.files()
files = [[fs.file_path(i), fs.file_size(i)] for i in range(fs.num_files())]
nodes = [list(node) for node in ti.nodes()]
print(json.dumps({"info_hash": str(ti.info_hashes().v1), "pieces": ti.num_pieces(), "files": files, "nodes": nodes}))
"#;
    let stdout = run_ok(Command::new(SYSTEM_PYTHON).args(["-c", script]).arg(torrent));
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).expect("libtorrent JSON");
    LibtorrentView {
        info_hash: value["info_hash"].as_str().expect("hash").to_owned(),
        pieces: value["pieces"].as_u64().expect("pieces"),
        files: value["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|file| (file[0].as_str().expect("path").to_owned(), file[1].as_u64().expect("size")))
            .collect(),
        nodes: nodes_of(&value["nodes"]),
    }
}

/// What our own parser says (through `mktorrent --show --json`), in libtorrent's terms.
fn our_view(torrent: &Path) -> LibtorrentView {
    let stdout = run_ok(Command::new(bin("mktorrent")).arg("--show").arg(torrent).arg("--json"));
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).expect("our JSON");
    LibtorrentView {
        info_hash: value["info_hash"].as_str().expect("hash").to_owned(),
        pieces: value["pieces"].as_u64().expect("pieces"),
        files: value["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|file| (file["path"].as_str().expect("path").to_owned(), file["length"].as_u64().expect("len")))
            .collect(),
        nodes: nodes_of(&value["nodes"]),
    }
}

fn make_ours(input: &Path, out: &Path, log2: u32) {
    run_ok(
        Command::new(bin("mktorrent"))
            .args(["-q", "-d", "-l", &log2.to_string(), "-a", ANNOUNCE, "-o"])
            .arg(out)
            .arg(input),
    );
}

fn make_debian(input: &Path, out: &Path, log2: u32) {
    run_ok(
        Command::new("/usr/bin/mktorrent")
            .args(["-d", "-l", &log2.to_string(), "-a", ANNOUNCE, "-o"])
            .arg(out)
            .arg(input),
    );
}

/// A folder with unicode names, an empty file, hidden files, names that sort differently per folder and
/// per whole path (`foo.txt` vs `foo/`), several levels deep.
fn nested_folder(root: &Path) -> PathBuf {
    let top = root.join("Nested Folder");
    let files: [(&str, usize); 9] = [
        ("foo.txt", 1_000),
        ("foo/bar.bin", 40_000),
        ("foo/baz/deep/deeper/leaf.dat", 33_333),
        (".hidden", 77),
        ("empty.txt", 0),
        ("ünïcødé/日本語.txt", 12_345),
        ("ünïcødé/emoji 🎉.md", 999),
        ("Zebra", 65_536),
        ("a b c/d e f", 5),
    ];
    for (index, (path, len)) in files.iter().enumerate() {
        write_pseudo_random(&top.join(path), *len, index as u64 + 100);
    }
    top
}

#[test]
fn single_files_hash_like_debian_mktorrent_and_load_in_libtorrent() {
    if !(have_debian_mktorrent() && have_libtorrent()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // 1 byte; exactly two pieces; not a multiple of the piece length; 64 KiB pieces.
    for (len, log2) in [(1usize, 15u32), (2 * 32_768, 15), (100_001, 15), (1_000_000, 16)] {
        let input = dir.path().join(format!("file-{len}.bin"));
        write_pseudo_random(&input, len, len as u64);
        let ours = dir.path().join(format!("ours-{len}.torrent"));
        let theirs = dir.path().join(format!("debian-{len}.torrent"));
        make_ours(&input, &ours, log2);
        make_debian(&input, &theirs, log2);

        let lt_ours = libtorrent_view(&ours);
        let lt_theirs = libtorrent_view(&theirs);
        assert_eq!(lt_ours.info_hash, lt_theirs.info_hash, "{len} bytes: info-hash differs from Debian mktorrent");
        assert_eq!(lt_ours, our_view(&ours), "{len} bytes: libtorrent reads our torrent differently");
        assert_eq!(lt_ours.pieces, (len as u64).div_ceil(1 << log2));
        assert_eq!(lt_ours.files, [(format!("file-{len}.bin"), len as u64)]);
    }
}

#[test]
fn a_nested_folder_hashes_like_debian_mktorrent_and_loads_in_libtorrent() {
    if !(have_debian_mktorrent() && have_libtorrent()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let top = nested_folder(dir.path());
    let ours = dir.path().join("ours.torrent");
    let theirs = dir.path().join("debian.torrent");
    make_ours(&top, &ours, 15);
    make_debian(&top, &theirs, 15);

    let lt_ours = libtorrent_view(&ours);
    assert_eq!(lt_ours.info_hash, libtorrent_view(&theirs).info_hash, "folder info-hash differs from Debian mktorrent");
    assert_eq!(lt_ours, our_view(&ours));
    assert_eq!(lt_ours.files.len(), 9);
    assert_eq!(lt_ours.files[0], ("Nested Folder/.hidden".to_owned(), 77));
    assert!(lt_ours.files.contains(&("Nested Folder/empty.txt".to_owned(), 0)));
    assert!(lt_ours.files.contains(&("Nested Folder/ünïcødé/日本語.txt".to_owned(), 12_345)));
    // Whole-path order: "foo.txt" sorts before "foo/..." because '.' < '/'.
    let position = |name: &str| lt_ours.files.iter().position(|(path, _)| path.ends_with(name)).expect(name);
    assert!(position("foo.txt") < position("foo/bar.bin"));
}

#[test]
fn we_read_what_other_tools_make_with_the_hash_libtorrent_reports() {
    if !(have_debian_mktorrent() && have_libtorrent() && have_transmission_create()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let top = nested_folder(dir.path());
    let single = dir.path().join("single.bin");
    write_pseudo_random(&single, 123_456, 9);

    let mut made = Vec::new();
    for (input, label) in [(&top, "folder"), (&single, "single")] {
        let debian = dir.path().join(format!("debian-{label}.torrent"));
        make_debian(input, &debian, 15);
        made.push(debian);

        let libtorrent = dir.path().join(format!("libtorrent-{label}.torrent"));
        let script = r#"
import sys, libtorrent as lt
fs = lt.file_storage()
lt.add_files(fs, sys.argv[1])
t = lt.create_torrent(fs, 32768, flags=lt.create_torrent.v1_only)
t.add_tracker(sys.argv[3])
lt.set_piece_hashes(t, __import__("os").path.dirname(sys.argv[1]))
open(sys.argv[2], "wb").write(lt.bencode(t.generate()))
"#;
        run_ok(Command::new(SYSTEM_PYTHON).args(["-c", script]).arg(input).arg(&libtorrent).arg(ANNOUNCE));
        made.push(libtorrent);

        let transmission = dir.path().join(format!("transmission-{label}.torrent"));
        run_ok(
            Command::new("transmission-create").args(["-s", "32", "-t", ANNOUNCE, "-o"]).arg(&transmission).arg(input),
        );
        made.push(transmission);
    }
    for torrent in &made {
        assert_eq!(our_view(torrent), libtorrent_view(torrent), "{} is read differently", torrent.display());
    }
}

#[test]
fn non_canonical_info_dicts_keep_their_real_hash() {
    if !have_libtorrent() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pieces = "p".repeat(40);
    // (before info, the info dict as written, after info)
    let cases: [(&str, String, String, String); 2] = [
        // Unknown keys inside info, and `private 0` as transmission writes it.
        (
            "extra-keys",
            "d8:announce3:url4:info".into(),
            format!(
                "d6:lengthi40000e4:name5:a.bin12:piece lengthi32768e6:pieces40:{pieces}7:privatei0e6:x-tool9:somethinge"
            ),
            "12:zz-top-level3:abce".into(),
        ),
        // Keys out of order inside info, and info before announce.
        (
            "unsorted",
            "d4:info".into(),
            format!("d4:name5:a.bin6:pieces40:{pieces}12:piece lengthi32768e6:lengthi40000ee"),
            "8:announce3:urle".into(),
        ),
    ];
    for (name, before, info, after) in cases {
        let path = dir.path().join(format!("{name}.torrent"));
        std::fs::write(&path, format!("{before}{info}{after}")).expect("write");
        let lt = libtorrent_view(&path);
        assert_eq!(our_view(&path), lt, "{name}");
        use sha1::Digest as _;
        assert_eq!(lt.info_hash, hex::encode(sha1::Sha1::digest(info.as_bytes())), "{name}: hash of the raw span");
    }
}

/// Makes a torrent of `input` with libtorrent's `create_torrent` (tests/support/lt_create.py: no trackers, no date,
/// no creator), adding each of `nodes` with `add_node`; returns the nodes libtorrent reads back from it.
fn lt_create_with_nodes(mode: &str, input: &Path, piece_length: u64, out: &Path, nodes: &[&str]) -> Vec<(String, u64)> {
    let mut command = Command::new(SYSTEM_PYTHON);
    command
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/lt_create.py"))
        .arg(mode)
        .arg(input)
        .arg(piece_length.to_string())
        .arg(out);
    for node in nodes {
        command.args(["--node", node]);
    }
    let stdout = run_ok(&mut command);
    nodes_of(&serde_json::from_str::<serde_json::Value>(stdout.trim()).expect("lt_create JSON")["nodes"])
}

#[test]
fn dht_nodes_are_read_and_written_as_libtorrent_does() {
    if !have_libtorrent() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("clip.bin");
    write_pseudo_random(&input, 100_000, 11);
    let nodes = ["127.0.0.1:6881", "[::1]:6882", "router.example.org:1"];
    let expected: Vec<(String, u64)> =
        [("127.0.0.1", 6881), ("::1", 6882), ("router.example.org", 1)].map(|(host, port)| (host.into(), port)).into();
    for (mode, flag) in [("v1", None), ("v2", Some("--v2")), ("hybrid", Some("--hybrid"))] {
        // libtorrent's torrent, read by libtorrent and by us.
        let theirs = dir.path().join(format!("libtorrent-{mode}.torrent"));
        assert_eq!(lt_create_with_nodes(mode, &input, 32_768, &theirs, &nodes), expected, "{mode}: libtorrent's own");
        assert_eq!(our_view(&theirs).nodes, expected, "{mode}: we read libtorrent's nodes differently");

        // Ours, read by libtorrent.
        let ours = dir.path().join(format!("ours-{mode}.torrent"));
        let mut command = Command::new(bin("mktorrent"));
        command.args(["-q", "-d", "--no-created-by", "--no-announce", "-l", "15"]).args(flag);
        for node in nodes {
            command.args(["--dht-node", node]);
        }
        run_ok(command.arg("-o").arg(&ours).arg(&input));
        let lt_ours = libtorrent_view(&ours);
        assert_eq!(lt_ours.nodes, expected, "{mode}: libtorrent reads our nodes differently");
        if mode == "v1" {
            assert_eq!(lt_ours, our_view(&ours), "libtorrent reads our torrent differently");
        }
        // Same content, options and nodes: the same bytes, `nodes` in the same place (before `piece layers`).
        assert!(
            std::fs::read(&ours).expect("ours") == std::fs::read(&theirs).expect("theirs"),
            "{mode}: our torrent's bytes differ from libtorrent's"
        );
    }
}
