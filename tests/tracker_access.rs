//! End-to-end tests of the tracker's access lists (`--allow FILE`, `--deny FILE`, or the config file's `allow` and
//! `deny` keys) and of its HTTP scrape of info-hashes it does not serve. The real `tracker` binary on loopback,
//! spoken to over UDP (BEP 15) and HTTP (BEP 3, BEP 48); every wait polls with a deadline.
#![cfg(unix)]

#[path = "common/access.rs"]
mod access;
mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use access::{AccessTracker, NOT_ALLOWED, eventually, hex_line, write_atomically, write_in_place};
use common::bin;
use common::process::Running;
use common::udp::UdpClient;
use tracker_protocol::TorrentStats;
use tracker_protocol::http::ScrapeEntry;

const LISTED: [u8; 20] = [0x11; 20];
const OTHER: [u8; 20] = [0x22; 20];
/// A v2 torrent's info-hash (SHA-256) as the list holds it, and the first 20 bytes its clients announce.
const V2_HEX: &str = "3333333333333333333333333333333333333333AAAAAAAAAAAAAAAAAAAAAAAA";
const V2_TRUNCATED: [u8; 20] = [0x33; 20];
/// Longest wait for the tracker to notice a changed list: it looks once a second.
const NOTICE: Duration = Duration::from_secs(10);
const ZERO: TorrentStats = TorrentStats { seeders: 0, completed: 0, leechers: 0 };

/// Writes `text` to `dir/name`; its path.
fn list_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the list");
    path
}

fn start(flag: &str, list: &Path) -> AccessTracker {
    AccessTracker::start(&[OsStr::new(flag), list.as_os_str()])
}

fn stats(seeders: u32) -> TorrentStats {
    TorrentStats { seeders, completed: 0, leechers: 0 }
}

#[test]
fn an_allow_list_without_torrents_serves_its_hashes_over_udp_and_http_and_refuses_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("# this week\n{}\n{V2_HEX}   # a v2 torrent\n\n", hex::encode_upper(LISTED));
    let list = list_file(dir.path(), "allow.txt", &text);
    let tracker = start("--allow", &list);

    assert_eq!(tracker.udp_announce(LISTED, 7001), Ok(1), "a listed hash over UDP");
    assert_eq!(tracker.http_announce(LISTED, 7002), Ok(2), "a listed hash over HTTP, in the same swarm");
    assert_eq!(tracker.udp_announce(V2_TRUNCATED, 7003), Ok(1), "a v2 hash is announced by its first 20 bytes");
    assert_eq!(tracker.udp_announce(OTHER, 7004), Err(NOT_ALLOWED.to_owned()));
    assert_eq!(tracker.http_announce(OTHER, 7004), Err(NOT_ALLOWED.to_owned()));

    // Scrapes answer a refused hash with zeros, over both fronts, and the listed ones with their counts.
    let over_udp = UdpClient::new(tracker.udp).scrape(&[OTHER, LISTED]);
    assert_eq!(over_udp, [ZERO, stats(2)]);
    let over_http = tracker.http_scrape(&[OTHER, LISTED]);
    let expected = [ScrapeEntry { info_hash: LISTED, stats: stats(2) }, ScrapeEntry { info_hash: OTHER, stats: ZERO }];
    assert_eq!(over_http, expected);
    assert_eq!(tracker.log_lines(&["access list read", "hashes=2", "start"]).len(), 1, "{}", tracker.process.stderr());
}

#[test]
fn a_deny_list_refuses_its_hashes_and_serves_every_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = list_file(dir.path(), "deny.txt", &hex_line(&LISTED));
    let tracker = start("--deny", &list);
    assert_eq!(tracker.refused(LISTED, 7001), Some(true));
    assert_eq!(tracker.refused(OTHER, 7002), Some(false));
    assert_eq!(tracker.http_scrape(&[LISTED]), [ScrapeEntry { info_hash: LISTED, stats: ZERO }]);
}

#[test]
fn editing_the_list_changes_the_answers_without_a_restart_whether_renamed_over_or_rewritten_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = list_file(dir.path(), "allow.txt", &hex_line(&LISTED));
    let tracker = start("--allow", &list);
    assert_eq!((tracker.refused(LISTED, 7001), tracker.refused(OTHER, 7002)), (Some(false), Some(true)));

    write_atomically(&list, &hex_line(&OTHER));
    let noticed = eventually(NOTICE, || tracker.refused(OTHER, 7002) == Some(false));
    assert!(noticed, "a list renamed over the old one was not read; stderr:\n{}", tracker.process.stderr());
    assert_eq!(tracker.refused(LISTED, 7001), Some(true), "the hash no longer listed");
    assert_eq!(tracker.http_scrape(&[LISTED]), [ScrapeEntry { info_hash: LISTED, stats: ZERO }], "its swarm is gone");

    write_in_place(&list, &format!("# back again\n{}", hex_line(&LISTED)));
    let noticed = eventually(NOTICE, || tracker.refused(LISTED, 7001) == Some(false));
    assert!(noticed, "a list rewritten in place was not read; stderr:\n{}", tracker.process.stderr());
    assert_eq!(tracker.refused(OTHER, 7002), Some(true));
    assert!(tracker.log_lines(&["access list read", "file changed"]).len() >= 2, "{}", tracker.process.stderr());
}

#[test]
fn sighup_re_reads_the_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = list_file(dir.path(), "deny.txt", &hex_line(&LISTED));
    let tracker = start("--deny", &list);
    assert!(tracker.log_lines(&["access list read", "SIGHUP"]).is_empty());
    // The file is unchanged, so only the signal can make the tracker read it again.
    tracker.hang_up();
    let read = eventually(NOTICE, || tracker.log_lines(&["access list read", "SIGHUP", "hashes=1"]).len() == 1);
    assert!(read, "no re-read after SIGHUP; stderr:\n{}", tracker.process.stderr());
    assert!(!tracker.log_lines(&["reloaded the torrents"]).is_empty(), "the torrents are re-read too");
    assert_eq!((tracker.refused(LISTED, 7001), tracker.refused(OTHER, 7002)), (Some(true), Some(false)));
}

#[test]
fn a_bad_line_on_reload_keeps_the_list_in_force_and_logs_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = list_file(dir.path(), "allow.txt", &hex_line(&LISTED));
    let tracker = start("--allow", &list);
    let shown = list.display().to_string();

    write_atomically(&list, &format!("{}# a typo follows\n{}\n", hex_line(&OTHER), &hex::encode(OTHER)[..39]));
    let expected = [shown.as_str(), "line 3: 39 hex digits", "the access list in force is unchanged"];
    let logged = eventually(NOTICE, || !tracker.log_lines(&expected).is_empty());
    assert!(logged, "the bad line was not reported; stderr:\n{}", tracker.process.stderr());
    assert_eq!((tracker.refused(LISTED, 7001), tracker.refused(OTHER, 7002)), (Some(false), Some(true)));

    // A SIGHUP reads it again, with the same result.
    tracker.hang_up();
    let after_sighup = [expected[0], expected[1], expected[2], "SIGHUP"];
    let again = eventually(NOTICE, || tracker.log_lines(&after_sighup).len() == 1);
    assert!(again, "no report after SIGHUP; stderr:\n{}", tracker.process.stderr());
    assert_eq!((tracker.refused(LISTED, 7001), tracker.refused(OTHER, 7002)), (Some(false), Some(true)));

    // Once fixed, the new list is in force.
    write_atomically(&list, &hex_line(&OTHER));
    assert!(eventually(NOTICE, || tracker.refused(OTHER, 7002) == Some(false)), "{}", tracker.process.stderr());
    assert_eq!(tracker.refused(LISTED, 7001), Some(true));
}

#[test]
fn a_bad_line_at_start_is_an_error_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        ("--allow", format!("# ok\n{}{}\n", hex_line(&LISTED), &hex::encode(OTHER)[..39]), "line 3: 39 hex digits"),
        ("--deny", format!("{}\n\nnot-a-hash\n", V2_HEX), "line 3: 'n' at column 1 is not a hex digit"),
    ];
    for (flag, text, problem) in cases {
        let list = list_file(dir.path(), "list.txt", &text);
        let mut tracker = Running::start(Command::new(bin("tracker")).arg(flag).arg(&list).args([
            "--bind",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ]));
        let status = tracker.wait(Duration::from_secs(20)).expect("the tracker should exit at once");
        assert!(!status.success(), "{flag}: a bad list must not start the tracker");
        let stderr = tracker.stderr();
        let expected = format!("tracker: error: access list {}, {problem}", list.display());
        assert!(stderr.contains(&expected), "{flag}: expected {expected:?} in:\n{stderr}");
        assert!(tracker.rest_of_stdout(Duration::from_secs(1)).is_empty(), "{flag}: it must not listen");
    }
}

#[test]
fn an_http_scrape_answers_a_hash_it_does_not_serve_with_zero_counts() {
    let tracker = AccessTracker::start(&[]);
    let mut expected = b"d5:filesd20:".to_vec();
    expected.extend_from_slice(&OTHER);
    expected.extend_from_slice(b"d8:completei0e10:downloadedi0e10:incompletei0eeee");
    assert_eq!(
        tracker.http_scrape_body(&[OTHER]),
        expected,
        "an open tracker that has not seen the hash (npm bittorrent-tracker rejects `d5:filesdee`)"
    );
    assert_eq!(tracker.udp_announce(LISTED, 7001), Ok(1));
    let over_http = tracker.http_scrape(&[OTHER, LISTED]);
    let entries = [ScrapeEntry { info_hash: LISTED, stats: stats(1) }, ScrapeEntry { info_hash: OTHER, stats: ZERO }];
    assert_eq!(over_http, entries, "the known hash with its counts, the unknown one with zeros");
    assert_eq!(UdpClient::new(tracker.udp).scrape(&[OTHER, LISTED]), [ZERO, stats(1)], "as the UDP scrape answers");
}

#[test]
fn the_config_files_allow_key_is_relative_to_the_file_and_a_deny_flag_replaces_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("conf");
    std::fs::create_dir_all(&folder).expect("mkdir");
    list_file(&folder, "allow.txt", &hex_line(&LISTED));
    let config = list_file(&folder, "tracker.toml", "allow = \"allow.txt\"\n");
    let tracker = AccessTracker::start(&[OsStr::new("--config"), config.as_os_str()]);
    assert_eq!((tracker.refused(LISTED, 7001), tracker.refused(OTHER, 7002)), (Some(false), Some(true)));

    let printed = common::run_ok(Command::new(bin("tracker")).arg("--config").arg(&config).arg("--print-config"));
    assert!(printed.contains(&format!("allow = {:?}", folder.join("allow.txt").display().to_string())), "{printed}");
    let deny = dir.path().join("deny.txt");
    let printed = common::run_ok(
        Command::new(bin("tracker")).arg("--config").arg(&config).arg("--deny").arg(&deny).arg("--print-config"),
    );
    assert!(printed.contains(&format!("deny = {:?}", deny.display().to_string())), "{printed}");
    assert!(!printed.contains("allow ="), "the flag replaces the file's list: {printed}");

    let both = list_file(&folder, "both.toml", "allow = \"allow.txt\"\ndeny = \"allow.txt\"\n");
    let refused = common::run(Command::new(bin("tracker")).arg("--config").arg(&both).arg("--print-config"));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("allow and deny cannot both be set"), "{stderr}");
}
