//! Issue 10: our peer announces to an HTTPS tracker. The tracker is the test's own (rustls, a certificate made
//! at test time); our peers trust it only because `SSL_CERT_FILE` names its certificate, as curl users expect,
//! and refuse it, saying why, when nothing does.

mod common;
#[path = "common/https_tracker.rs"]
mod https_tracker;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::Running;
use common::{bin, json_events, make_torrent, write_pseudo_random};
use https_tracker::HttpsTracker;
use tracker_protocol::AnnounceEvent;

const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Our peer with `--json`, on loopback, trusting `ca` through `SSL_CERT_FILE`, or only the built-in and system
/// roots when `None`. SSL_CERT_DIR is cleared so that the caller's environment cannot change the outcome.
fn our_peer(torrent: &Path, dir: &Path, ca: Option<&Path>) -> Command {
    let mut command = Command::new(bin("peer"));
    command.args(["--no-dht", "--no-lsd"]);
    command.arg("0").arg(torrent).arg("--dir").arg(dir).args(["--bind", "127.0.0.1", "--json"]);
    command.args(["--tracker-timeout", "0.5"]).env_remove("SSL_CERT_DIR");
    match ca {
        Some(pem) => command.env("SSL_CERT_FILE", pem),
        None => command.env_remove("SSL_CERT_FILE"),
    };
    command
}

/// Reads `process`'s stdout until a JSON event of `kind` arrives, for up to `timeout`; returns all lines read.
fn lines_until(process: &mut Running, kind: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::new();
    while json_events(&lines, kind).is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match process.wait_for_line(|_| true, left) {
            Some(line) => lines.push(line),
            None => panic!("no {kind} event within {timeout:?}; stdout {lines:?}\nstderr:\n{}", process.stderr()),
        }
    }
    lines
}

/// `dir/src/NAME`, `len` bytes of data seeded by `seed`.
fn source_file(dir: &Path, name: &str, len: usize, seed: u64) -> PathBuf {
    let path = dir.join("src").join(name);
    write_pseudo_random(&path, len, seed);
    path
}

#[test]
fn our_peers_trust_a_private_https_tracker_through_ssl_cert_file_and_the_download_is_identical() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = HttpsTracker::start(work.path());
    let data = source_file(work.path(), "over-https.bin", 3 * 1024 * 1024 + 13, 21);
    let (torrent, info_hash) = make_torrent(&data, &tracker.announce_url(), 16);

    let mut seeder = Running::start(&mut our_peer(&torrent, &work.path().join("src"), Some(tracker.certificate())));
    let seeder_lines = lines_until(&mut seeder, "seeding", Duration::from_secs(30));
    assert!(
        json_events(&seeder_lines, "announced").iter().any(|event| event["tracker"] == tracker.announce_url().as_str()),
        "the seeder did not announce to the HTTPS tracker: {seeder_lines:?}\nTLS errors at the tracker: {:?}",
        tracker.tls_errors()
    );

    let into = work.path().join("leech");
    let mut leecher = Running::start(our_peer(&torrent, &into, Some(tracker.certificate())).arg("--exit-on-complete"));
    let status = leecher.wait(DOWNLOAD_TIMEOUT);
    let rest = leecher.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()),
        "the leecher did not complete in {DOWNLOAD_TIMEOUT:?} (status {status:?}); announce failures {:?}\n\
         stderr:\n{}",
        json_events(&rest, "announce_failed"),
        leecher.stderr()
    );
    let (original, copy) = (std::fs::read(&data).expect("original"), std::fs::read(into.join("over-https.bin")));
    assert!(copy.is_ok_and(|copy| copy == original), "the downloaded file differs from the original");
    assert!(json_events(&rest, "announce_failed").is_empty(), "{:?}", json_events(&rest, "announce_failed"));

    let announces = tracker.announces();
    assert!(announces.iter().all(|announce| announce.info_hash == info_hash));
    let seeds = announces.iter().filter(|announce| announce.left == 0 && announce.event == AnnounceEvent::Started);
    assert_eq!(seeds.count(), 1, "one `started` from the seeder: {announces:?}");
    let leecher_id = announces.iter().find(|announce| announce.left > 0).map(|announce| announce.peer_id);
    let from_leecher: Vec<AnnounceEvent> =
        announces.iter().filter(|announce| Some(announce.peer_id) == leecher_id).map(|a| a.event).collect();
    // Each of the leecher's announces came over its own TLS connection (the tracker closes every one).
    for event in [AnnounceEvent::Started, AnnounceEvent::Completed, AnnounceEvent::Stopped] {
        assert!(from_leecher.contains(&event), "no {event:?} among the leecher's announces: {from_leecher:?}");
    }
    assert!(tracker.tls_errors().is_empty(), "{:?}", tracker.tls_errors());
}

#[test]
fn without_ssl_cert_file_our_peer_refuses_the_private_tracker_and_says_it_is_the_certificate() {
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = HttpsTracker::start(work.path());
    let data = source_file(work.path(), "untrusted.bin", 100_000, 22);
    let (torrent, _) = make_torrent(&data, &tracker.announce_url(), 15);

    let mut seeder = Running::start(&mut our_peer(&torrent, &work.path().join("src"), None));
    let lines = lines_until(&mut seeder, "announce_failed", Duration::from_secs(30));
    let failed = json_events(&lines, "announce_failed");
    let error = failed[0]["error"].as_str().expect("an error text");
    assert_eq!(failed[0]["tracker"], tracker.announce_url().as_str());
    // rustls' own words: the peer's error must say that the certificate is the problem, not just "error sending
    // request", or a user has nothing to go on.
    assert!(error.contains("certificate") && error.contains("UnknownIssuer"), "{error}");
    assert!(!error.contains("info_hash="), "the cause is buried under the announce query: {error}");
    assert!(tracker.announces().is_empty(), "an untrusted tracker was sent an announce: {:?}", tracker.announces());
    assert!(json_events(&lines, "announced").is_empty(), "{lines:?}");
}
