//! End-to-end tests of the `mktorrent` program: real files in temporary folders, the real binary.

mod common;

use std::path::Path;
use std::process::Command;

use common::{bin, run, run_ok, write_pseudo_random};

fn mktorrent(dir: &Path) -> Command {
    let mut command = Command::new(bin("mktorrent"));
    command.current_dir(dir).env_remove("SOURCE_DATE_EPOCH");
    command
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("not JSON ({err}): {stdout}"))
}

/// Runs a command that must fail; returns its stderr after checking it is a clean error, not a panic.
fn run_err(command: &mut Command) -> String {
    let output = run(command);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{command:?} should have failed; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{command:?} panicked: {stderr}");
    stderr
}

#[test]
fn writes_stem_dot_torrent_in_the_current_folder_and_keeps_it_without_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_pseudo_random(&dir.path().join("data/spiderman.txt"), 70_000, 1);
    let stdout = run_ok(mktorrent(dir.path()).args(["--json", "data/spiderman.txt"]));
    let report = json(&stdout);
    assert_eq!(report["name"], "spiderman.txt");
    assert_eq!(report["output"], "spiderman.torrent");
    assert_eq!(report["piece_length"], 32_768);
    assert_eq!(report["pieces"], 3);
    assert_eq!(report["trackers"][0], "udp://127.0.0.1:6969/announce");
    let first = std::fs::read(dir.path().join("spiderman.torrent")).expect("torrent written");

    // A second run must not touch the existing file.
    let stderr = run_err(mktorrent(dir.path()).args(["-l", "15", "-c", "other", "data/spiderman.txt"]));
    assert!(stderr.contains("spiderman.torrent already exists"), "{stderr}");
    assert_eq!(std::fs::read(dir.path().join("spiderman.torrent")).expect("still there"), first);

    run_ok(mktorrent(dir.path()).args(["-q", "-f", "-c", "other", "data/spiderman.txt"]));
    assert_ne!(std::fs::read(dir.path().join("spiderman.torrent")).expect("rewritten"), first);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

#[test]
fn the_sample_torrent_is_reproducible_byte_for_byte() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("spiderman.torrent");
    run_ok(mktorrent(root).args(["-q", "-d", "-o"]).arg(&out).arg("sample-data/spiderman.txt"));
    let committed = std::fs::read(root.join("torrents/spiderman.torrent")).expect("torrents/spiderman.torrent");
    assert_eq!(std::fs::read(&out).expect("made"), committed, "regenerate with `just sample-torrent`");

    // SOURCE_DATE_EPOCH pins the creation date, so two runs give the same bytes.
    let dated = |name: &str| {
        let path = dir.path().join(name);
        run_ok(mktorrent(root).env("SOURCE_DATE_EPOCH", "1700000000").args(["-q", "-o"]).arg(&path).arg("sample-data"));
        std::fs::read(path).expect("made")
    };
    let (a, b) = (dated("a.torrent"), dated("b.torrent"));
    assert_eq!(a, b);
    assert!(String::from_utf8_lossy(&a).contains("13:creation datei1700000000e"));
}

#[test]
fn every_classic_option_reaches_the_torrent() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_pseudo_random(&dir.path().join("movie.bin"), 300_000, 2);
    let stdout = run_ok(mktorrent(dir.path()).args([
        "-a",
        "udp://one:1/announce,udp://two:2/announce",
        "-a",
        "udp://three:3/announce",
        "-c",
        "a comment",
        "-d",
        "-l",
        "16",
        "-n",
        "renamed.bin",
        "-o",
        "out.torrent",
        "-p",
        "-s",
        "SRC",
        "-t",
        "2",
        "-w",
        "http://seed/a",
        "-w",
        "http://seed/b",
        "--json",
        "movie.bin",
    ]));
    assert_eq!(json(&stdout)["output"], "out.torrent");
    let shown = json(&run_ok(mktorrent(dir.path()).args(["--show", "out.torrent", "--json"])));
    assert_eq!(shown["name"], "renamed.bin");
    assert_eq!(shown["announce"], "udp://one:1/announce");
    assert_eq!(
        shown["announce_list"],
        serde_json::json!([["udp://one:1/announce", "udp://two:2/announce"], ["udp://three:3/announce"]])
    );
    assert_eq!(shown["comment"], "a comment");
    assert_eq!(shown["creation_date"], serde_json::Value::Null);
    assert_eq!(shown["piece_length"], 65_536);
    assert_eq!(shown["pieces"], 5);
    assert_eq!(shown["private"], true);
    assert_eq!(shown["source"], "SRC");
    assert_eq!(shown["url_list"], serde_json::json!(["http://seed/a", "http://seed/b"]));

    let human = run_ok(mktorrent(dir.path()).args(["--show", "out.torrent"]));
    for expected in ["renamed.bin", "tier 2: udp://three:3/announce", "Private       yes", "http://seed/b", "Info-hash"]
    {
        assert!(human.contains(expected), "--show lacks {expected:?}:\n{human}");
    }
}

#[test]
fn verify_reports_each_file_and_fails_on_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("downloads/album");
    write_pseudo_random(&data.join("01.flac"), 50_000, 3);
    write_pseudo_random(&data.join("02.flac"), 50_000, 4);
    write_pseudo_random(&data.join("cover/front.jpg"), 20_000, 5);
    run_ok(mktorrent(dir.path()).args(["-q", "-l", "15", "downloads/album"]));

    let good = json(&run_ok(mktorrent(dir.path()).args(["--verify", "album.torrent", "--dir", "downloads", "--json"])));
    assert_eq!(good["ok"], true);
    assert_eq!(good["pieces_ok"], 4);

    // Flip one byte in the second file: its pieces fail, the others stay fine.
    let mut bytes = std::fs::read(data.join("02.flac")).expect("read");
    bytes[40_000] ^= 0xff;
    std::fs::write(data.join("02.flac"), bytes).expect("write");
    std::fs::remove_file(data.join("cover/front.jpg")).expect("remove");
    let output = run(mktorrent(dir.path()).args(["--verify", "album.torrent", "--dir", "downloads"]));
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("ok   downloads/album/01.flac"), "{stdout}");
    assert!(stdout.contains("BAD  downloads/album/02.flac  corrupt"), "{stdout}");
    assert!(stdout.contains("BAD  downloads/album/cover/front.jpg  missing"), "{stdout}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("2 of 3 files do not match"));
}

#[test]
fn bad_input_gets_a_clear_error_and_no_output_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path();
    std::fs::create_dir(path.join("empty-folder")).expect("mkdir");
    std::fs::write(path.join("zero.bin"), b"").expect("write");
    std::fs::write(path.join("some.bin"), b"data").expect("write");

    let cases: [(&[&str], &str); 6] = [
        (&["missing.bin"], "missing.bin"),
        (&["empty-folder"], "nothing to share"),
        (&["zero.bin"], "nothing to share"),
        (&["-l", "13", "some.bin"], "13"),
        (&["-l", "29", "some.bin"], "29"),
        (&["-n", "../escape", "some.bin"], "separator"),
    ];
    for (args, expected) in cases {
        let stderr = run_err(mktorrent(path).args(args));
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let torrents: Vec<_> = std::fs::read_dir(path)
        .expect("list")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().contains("torrent"))
        .collect();
    assert!(torrents.is_empty(), "no output may be written on error: {torrents:?}");
}

#[test]
fn hostile_torrents_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bomb = b"d4:info".to_vec();
    bomb.extend(std::iter::repeat_n(b'l', 1_000_000));
    let traversal = format!(
        "d4:infod5:filesld6:lengthi1e4:pathl2:..6:passwdeee4:name1:x12:piece lengthi16384e6:pieces20:{}ee",
        "p".repeat(20)
    );
    let cases: [(&str, &[u8], &str); 5] = [
        ("bomb.torrent", &bomb, "nesting deeper"),
        ("huge.torrent", b"d4:info99999999999:xe", "claims 99999999999 bytes"),
        ("garbled.torrent", b"this is not bencode", "not valid bencode"),
        ("truncated.torrent", b"d8:announce3:url4:infod4:name", "ends in the middle"),
        ("traversal.torrent", traversal.as_bytes(), "info.files[0].path"),
    ];
    for (name, bytes, expected) in cases {
        std::fs::write(dir.path().join(name), bytes).expect("write");
        for mode in ["--show", "--verify"] {
            let stderr = run_err(mktorrent(dir.path()).args([mode, name]));
            assert!(stderr.contains(name) && stderr.contains(expected), "{mode} {name}: {stderr}");
        }
    }
    let stderr = run_err(mktorrent(dir.path()).args(["--show", "absent.torrent"]));
    assert!(stderr.contains("absent.torrent"), "{stderr}");
}

#[test]
fn show_reads_back_the_magnet_link_it_prints_and_refuses_bad_ones() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("clip.bin");
    write_pseudo_random(&data, 70_000, 3);
    run_ok(
        mktorrent(work.path())
            .args(["-q", "-a", "udp://t.example:6969/announce", "-a", "http://u.example/a"])
            .arg(&data),
    );
    let shown = json(&run_ok(mktorrent(work.path()).args(["--show", "clip.torrent", "--json"])));
    let magnet = shown["magnet"].as_str().expect("a magnet link");
    let read = json(&run_ok(mktorrent(work.path()).args(["--show", magnet, "--json"])));
    assert_eq!(read["info_hash"], shown["info_hash"]);
    assert_eq!(read["name"], "clip.bin");
    assert_eq!(read["trackers"], serde_json::json!(["udp://t.example:6969/announce", "http://u.example/a"]));

    // A v2 link: its swarm is named by the truncated hash.
    let v2 = "0123456789abcdef".repeat(4);
    let read =
        json(&run_ok(mktorrent(work.path()).args(["--show", &format!("magnet:?xt=urn:btmh:1220{v2}"), "--json"])));
    assert_eq!((read["info_hash"].as_str(), read["info_hash_v2"].as_str()), (Some(&v2[..40]), Some(&v2[..])));
    for (bad, why) in [
        ("magnet:?xt=urn:btih:0123", "neither 40 hex digits nor 32 base32"),
        ("magnet:?dn=x", "no `xt=urn:btih:`"),
        ("magnet:?xt=urn:btmh:1220aa", "not a sha2-256 multihash"),
    ] {
        let stderr = run_err(mktorrent(work.path()).args(["--show", bad]));
        assert!(stderr.contains(why), "{bad}: {stderr}");
    }
}

#[test]
fn dht_nodes_and_no_announce_make_a_trackerless_torrent() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_pseudo_random(&dir.path().join("clip.bin"), 70_000, 6);
    let nodes = ["127.0.0.1:6881", "[::1]:6882", "router.example.org:1"];
    let mut args = vec!["-d", "--json", "--no-announce", "-o", "dht.torrent"];
    for node in nodes {
        args.extend(["--dht-node", node]);
    }
    let report = json(&run_ok(mktorrent(dir.path()).args(&args).arg("clip.bin")));
    let expected_nodes = serde_json::json!([["127.0.0.1", 6881], ["::1", 6882], ["router.example.org", 1]]);
    assert_eq!(report["nodes"], expected_nodes);
    assert_eq!(report["trackers"], serde_json::json!([]));

    let bytes = std::fs::read(dir.path().join("dht.torrent")).expect("written");
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("announce"), "--no-announce writes no announce key: {text}");
    assert!(text.contains("5:nodesll9:127.0.0.1i6881eel3:::1i6882eel18:router.example.orgi1eee"), "{text}");

    let shown = json(&run_ok(mktorrent(dir.path()).args(["--show", "dht.torrent", "--json"])));
    assert_eq!(shown["nodes"], expected_nodes);
    assert_eq!(shown["announce"], serde_json::Value::Null);
    assert_eq!(shown["announce_list"], serde_json::json!([]));
    let human = run_ok(mktorrent(dir.path()).args(["--show", "dht.torrent"]));
    let expected = "Trackers\n  (none)\nDHT nodes\n  127.0.0.1:6881\n  [::1]:6882\n  router.example.org:1\nFile list\n";
    assert!(human.contains(expected), "--show lacks {expected:?}:\n{human}");
    let verbose =
        run_ok(mktorrent(dir.path()).args(["-f", "-v", "--dht-node", "10.0.0.1:1", "-o", "v.torrent", "clip.bin"]));
    assert!(verbose.contains("Trackers\n  udp://127.0.0.1:6969/announce\nDHT nodes\n  10.0.0.1:1\n"), "{verbose}");

    // `nodes` lies outside the info dict: the info-hash is that of the same torrent without nodes or trackers.
    let plain = json(&run_ok(mktorrent(dir.path()).args(["-d", "--json", "-o", "plain.torrent", "clip.bin"])));
    assert_eq!(plain["info_hash"], report["info_hash"]);
    assert_eq!(plain["nodes"], serde_json::json!([]));
    assert_eq!(plain["trackers"][0], "udp://127.0.0.1:6969/announce", "the everyday default stays");

    // A torrent with neither trackers nor nodes is allowed (magnet links, DHT users).
    let bare = json(&run_ok(mktorrent(dir.path()).args(["--json", "--no-announce", "-o", "bare.torrent", "clip.bin"])));
    assert_eq!(bare["trackers"], serde_json::json!([]));
    assert_eq!(bare["nodes"], serde_json::json!([]));
    let human = run_ok(mktorrent(dir.path()).args(["--show", "bare.torrent"]));
    assert!(human.contains("Trackers\n  (none)\nFile list\n"), "{human}");
}

#[test]
fn no_announce_with_announce_and_bad_dht_nodes_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("some.bin"), b"data").expect("write");
    let cases: [(&[&str], &[&str]); 7] = [
        (&["--no-announce", "-a", "udp://t:1/announce"], &["--no-announce", "cannot be used with"]),
        (&["-a", "udp://t:1/announce", "--no-announce"], &["--no-announce", "cannot be used with"]),
        (&["--dht-node", "router.example.org"], &["--dht-node", "HOST:PORT"]),
        (&["--dht-node", "host:0"], &["--dht-node", "port 0"]),
        (&["--dht-node", "host:65536"], &["--dht-node", "1 to 65535"]),
        (&["--dht-node", "::1:6881"], &["--dht-node", "brackets"]),
        (&["--dht-node", ":6881"], &["--dht-node", "empty"]),
    ];
    for (args, expected) in cases {
        let output = run(mktorrent(dir.path()).args(args).arg("some.bin"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} is a usage error: {stderr}");
        for part in expected {
            assert!(stderr.contains(part), "{args:?}: {stderr}");
        }
    }
    assert!(!dir.path().join("some.torrent").exists(), "no output may be written on a usage error");

    let help = run_ok(mktorrent(dir.path()).arg("--help"));
    for flag in ["--no-announce", "--dht-node <HOST:PORT>", "BEP 5"] {
        assert!(help.contains(flag), "--help lacks {flag:?}:\n{help}");
    }
}
