//! Issue 26: `peer --config FILE`. A leecher whose every setting (port, torrent, folder, peer, flags) comes from a
//! TOML file downloads from our seeder; a bad value in the file is refused with the message its flag would get.

mod common;

use std::process::Command;
use std::time::Duration;

use common::library_session::start_seeder;
use common::process::Running;
use common::{assert_same_file, bin, make_torrent, run, write_pseudo_random};

#[test]
fn a_leecher_set_up_by_its_config_file_alone_downloads_the_torrent() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("seed").join("film.bin");
    write_pseudo_random(&data, 600_000, 26);
    // A tracker nobody answers: the leecher finds the seeder through the file's `peer`.
    let (torrent, _) = make_torrent(&data, "udp://127.0.0.1:9/announce", 15);
    let (_seeder, seeder_addr) = start_seeder(&torrent, &work.path().join("seed"), "100M");

    let folder = work.path().join("service");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::copy(&torrent, folder.join("film.torrent")).expect("copy the torrent");
    let config = folder.join("peer.toml");
    std::fs::write(
        &config,
        format!(
            "port = 0\ntorrents = [\"film.torrent\"]\ndir = \"downloads\"\npeer = [\"{seeder_addr}\"]\n\
             bind = \"127.0.0.1\"\nno_dht = true\nno_lsd = true\nexit_on_complete = true\njson = true\n\
             tracker_timeout = 0.5\n"
        ),
    )
    .expect("write the config");

    // Run from another folder: the file's relative paths are the file's, not the working folder's.
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    let mut leecher = Running::start(Command::new(bin("peer")).current_dir(&elsewhere).arg("--config").arg(&config));
    let status = leecher.wait(Duration::from_secs(60)).expect("the leecher finished within 60 s");
    assert!(status.success(), "the leecher failed: {}", leecher.stderr());
    assert_same_file(&data, &folder.join("downloads").join("film.bin"));
    assert!(!elsewhere.join("film.bin").exists(), "nothing is written in the working folder");
}

#[test]
fn a_bad_value_or_an_unknown_key_in_the_file_is_refused_naming_it() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = work.path().join("peer.toml");

    std::fs::write(&config, "port = 0\ntorrents = [\"x.torrent\"]\nmax_peers = 0\n").expect("write");
    let output = run(Command::new(bin("peer")).arg("--config").arg(&config));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a bad value is a usage error: {stderr}");
    assert!(stderr.contains("--max-peers"), "{stderr}");

    std::fs::write(&config, "port = 0\ntorrents = [\"x.torrent\"]\nmax_peer = 3\n").expect("write");
    let output = run(Command::new(bin("peer")).arg("--config").arg(&config));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("unknown key `max_peer`"), "{stderr}");

    // --print-config shows the file's settings under the command line's, and needs neither PORT nor a torrent.
    std::fs::write(&config, "max_peers = 12\nno_dht = true\n").expect("write");
    let output = run(Command::new(bin("peer")).arg("--config").arg(&config).args(["--print-config", "--no-lsd"]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for line in ["max_peers = 12", "no_dht = true", "no_lsd = true", "max_connections = 200"] {
        assert!(stdout.lines().any(|printed| printed == line), "{line:?} not in:\n{stdout}");
    }
}
