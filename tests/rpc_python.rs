//! Issue 24: our RPC driven by `transmission-rpc` (PyPI), the library most automation tools use: it downloads a
//! two-file torrent from our seeder, stops and starts it, leaves a file out and takes it back, and removes it with
//! its data; each copy is checked byte for byte before the removal, and gone after it.

mod common;

use std::process::Command;

use common::library_session::{Tracker, start_rpc_session, start_seeder};
use common::{have_tool, make_torrent, write_pseudo_random};

#[test]
fn the_transmission_rpc_library_downloads_stops_starts_selects_and_removes() {
    let have = have_tool(
        "python3 with transmission-rpc (python3 -m pip install transmission-rpc)",
        Command::new("python3").args(["-c", "import transmission_rpc"]),
    );
    if !have {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    let folder = work.path().join("seed").join("pair");
    write_pseudo_random(&folder.join("a.bin"), 500_000, 11);
    write_pseudo_random(&folder.join("b.bin"), 200_000, 12);
    let (torrent, hash) = make_torrent(&folder, &tracker.announce, 15);
    let (_seeder, _) = start_seeder(&torrent, &work.path().join("seed"), "100M");

    let downloads = work.path().join("downloads");
    let (_session, rpc) = start_rpc_session(&downloads, &[]);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/rpc_client.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(rpc.port().to_string())
        .arg(&torrent)
        .arg(&folder)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(seen["rpc_version"], 17);
    assert_eq!(seen["added"]["name"], "pair");
    assert_eq!(seen["added"]["hash"], hex::encode(hash));
    assert_eq!(seen["done"]["percent"], 1.0);
    assert_eq!(seen["done"]["size"], 700_000);
    assert_eq!(seen["done"]["dir"], downloads.to_string_lossy().as_ref());
    assert_eq!(seen["stopped"], "stopped");
    assert_eq!(seen["started"], "seeding", "{seen}");
    assert_eq!(seen["unwanted"], serde_json::json!([false, true]));
    assert_eq!(seen["wanted"], serde_json::json!([true, true]));
    assert_eq!(seen["files"], serde_json::json!(["pair/a.bin", "pair/b.bin"]));
    assert_eq!(seen["left"], 0);
    let identical = serde_json::json!({"pair/a.bin": true, "pair/b.bin": true});
    assert_eq!(seen["identical"], identical, "the copies before removal, byte for byte");
    assert!(!downloads.join("pair").exists(), "removed with its data");
}
