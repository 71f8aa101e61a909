//! End-to-end: our peer started from a magnet link alone. It fetches the metadata (BEP 9) from peers, checks it
//! against the info-hash, saves it as NAME.torrent and downloads; liars and impossible sizes are refused.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::process::Running;
use common::{bin, free_udp_port, json_events, make_torrent, write_pseudo_random};
use peer_wire::{Handshake, Message, MetadataMessage, ReservedBit};

fn start_tracker() -> (Running, String) {
    let port = free_udp_port();
    let (tracker, _) = Running::start_listening(
        Command::new(bin("tracker")).args(["--open", "--interval", "5", "--bind"]).arg(format!("127.0.0.1:{port}")),
    );
    (tracker, format!("udp://127.0.0.1:{port}/announce"))
}

fn peer_command(torrent: &str, dir: &Path) -> Command {
    let mut command = Command::new(bin("peer"));
    command.args(["--no-dht", "--no-lsd"]);
    command.arg("0").arg(torrent).arg("--dir").arg(dir).args(["--tracker-timeout", "0.5", "--json"]);
    command
}

fn start_seeder(torrent: &Path, dir: &Path) -> (Running, SocketAddr) {
    let mut command = Command::new(bin("peer"));
    command.args(["--no-dht", "--no-lsd"]);
    command.arg("0").arg(torrent).arg("--dir").arg(dir).args(["--tracker-timeout", "0.5"]);
    let (mut seeder, addr) = Running::start_listening(&mut command);
    let line = seeder.wait_for_line(|line| line.starts_with("seeding"), Duration::from_secs(30));
    assert!(line.is_some(), "the seeder never reported seeding; stderr:\n{}", seeder.stderr());
    (seeder, SocketAddr::from(([127, 0, 0, 1], addr.port())))
}

fn magnet_of(torrent: &Path) -> String {
    let shown = common::run_ok(Command::new(bin("mktorrent")).arg("--show").arg(torrent).arg("--json"));
    let value: serde_json::Value = serde_json::from_str(&shown).expect("json");
    value["magnet"].as_str().expect("a magnet link").to_owned()
}

/// Waits for a leecher started with --exit-on-complete to succeed; returns its stdout.
fn expect_complete(peer: &mut Running, timeout: Duration) -> Vec<String> {
    let status = peer.wait(timeout);
    let lines = peer.rest_of_stdout(Duration::from_secs(2));
    assert!(
        status.is_some_and(|status| status.success()),
        "the leecher did not complete in {timeout:?} (status {status:?}); stdout {lines:?}\nstderr:\n{}",
        peer.stderr()
    );
    lines
}

/// Files in `dir`, sorted, but for the fast-resume folder: to check nothing else was written there.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|name| name != peer::resume::RESUME_DIR);
    names.sort();
    names
}

/// A torrent of `len` pseudo-random bytes named `name` in `dir/src`, announcing to `announce`.
fn torrent(dir: &Path, name: &str, len: usize, announce: &str) -> (PathBuf, PathBuf, [u8; 20]) {
    let data = dir.join("src").join(name);
    write_pseudo_random(&data, len, 7);
    let (torrent, hash) = make_torrent(&data, announce, 15);
    (data, torrent, hash)
}

#[test]
fn a_magnet_link_alone_downloads_from_our_seeder_and_a_restart_needs_no_peer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut tracker, announce) = start_tracker();
    // 2,000 pieces of 32 KiB: a 40 KB info dictionary, three metadata pieces.
    let (data, torrent, _) = torrent(dir.path(), "film.bin", 2000 << 15, &announce);
    let (mut seeder, _) = start_seeder(&torrent, data.parent().expect("src"));
    let magnet = magnet_of(&torrent);

    let downloads = dir.path().join("downloads");
    let mut leecher = Running::start(peer_command(&magnet, &downloads).arg("--exit-on-complete"));
    let lines = expect_complete(&mut leecher, Duration::from_secs(60));
    let received = json_events(&lines, "metadata_received");
    assert_eq!(received.len(), 1, "one metadata_received event in {lines:?}");
    let saved = downloads.join("film.bin.torrent");
    assert_eq!(json_events(&lines, "torrent_saved")[0]["path"], saved.display().to_string());
    assert_eq!(std::fs::read(&saved).ok().map(|bytes| bytes.len() > 40_000), Some(true));
    assert_eq!(std::fs::read(&data).expect("original"), std::fs::read(downloads.join("film.bin")).expect("copy"));
    assert_eq!(listing(&downloads), ["film.bin", "film.bin.torrent"]);
    // Each verified piece names who sent it: here always the one seeder.
    let verified = json_events(&lines, "piece_verified");
    assert_eq!(verified.len(), 2000);
    let senders: std::collections::BTreeSet<String> = verified
        .iter()
        .flat_map(|event| event["from"].as_array().cloned().unwrap_or_default())
        .filter_map(|from| from["peer_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(senders.len(), 1, "{senders:?}");
    // The saved torrent is a real one: it lists the link's tracker and seeds as it is.
    let shown = common::run_ok(Command::new(bin("mktorrent")).arg("--show").arg(&saved).arg("--json"));
    assert!(shown.contains(&announce), "{shown}");

    // No tracker, no seeder: a restart with the same link starts from the saved torrent and finds the data whole.
    seeder.interrupt(Duration::from_secs(10));
    tracker.interrupt(Duration::from_secs(10));
    let mut again = Running::start(peer_command(&magnet, &downloads).arg("--exit-on-complete"));
    let lines = expect_complete(&mut again, Duration::from_secs(30));
    assert!(json_events(&lines, "metadata_received").is_empty(), "fetched again: {lines:?}");
    assert_eq!(json_events(&lines, "checked")[0]["have"], 2000);
    assert_eq!(listing(&downloads), ["film.bin", "film.bin.torrent"]);
}

#[test]
fn a_seeder_that_comes_later_and_dials_us_serves_the_metadata_at_once() {
    // The tracker's own interval (120 s): the leecher's next announce is a minute away, so only the seeder's
    // dial, answered during the metadata fetch, can bring the two together in time.
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_udp_port();
    let (_tracker, _) = Running::start_listening(
        Command::new(bin("tracker")).args(["--open", "--bind"]).arg(format!("127.0.0.1:{port}")),
    );
    let announce = format!("udp://127.0.0.1:{port}/announce");
    let (data, torrent, _) = torrent(dir.path(), "film.bin", 200 << 15, &announce);
    let magnet = magnet_of(&torrent);
    assert!(!magnet.contains("x.pe"), "{magnet}");
    let downloads = dir.path().join("downloads");
    let started = std::time::Instant::now();
    let mut leecher = Running::start(peer_command(&magnet, &downloads).arg("--exit-on-complete"));
    assert!(leecher.wait_for_line(|line| line.contains("\"announced\""), Duration::from_secs(10)).is_some());
    std::thread::sleep(Duration::from_secs(2));
    let (_seeder, _) = start_seeder(&torrent, data.parent().expect("src"));
    let lines = expect_complete(&mut leecher, Duration::from_secs(20));
    let took = started.elapsed();
    eprintln!("leecher started 2 s before the seeder: complete in {:.2} s", took.as_secs_f64());
    let connected = json_events(&lines, "metadata_received");
    assert_eq!(connected.len(), 1, "{lines:?}");
    assert!(took < Duration::from_secs(20));
    assert_eq!(std::fs::read(&data).expect("original"), std::fs::read(downloads.join("film.bin")).expect("copy"));
}

#[test]
fn malformed_magnet_links_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (link, reason) in [
        ("magnet:?xt=urn:btih:1234", "neither 40 hex digits nor 32 base32 letters"),
        ("magnet:?xt=urn:btih:zz2fe1c06bba254a9dc9f519b335aa7c1367a88a", "neither 40 hex digits"),
        ("magnet:?dn=nothing", "no `xt=urn:btih:` info-hash"),
        ("magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a", "no tracker (tr=) and no peer"),
        ("magnet:?xt=urn:btmh:1114c12fe1c06bba254a9dc9f519b335aa7c1367a88a", "not a sha2-256 multihash"),
        (
            "magnet:?xt=urn:btmh:1220c12fe1c06bba254a9dc9f519b335aa7c1367a88ac12fe1c06bba254a9dc9f519",
            "no tracker (tr=) and no peer",
        ),
    ] {
        let out = common::run(&mut peer_command(link, dir.path()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{link} was accepted");
        assert!(stderr.contains(reason), "{link}: {stderr}");
    }
    assert!(listing(dir.path()).is_empty(), "written: {:?}", listing(dir.path()));
}

#[test]
fn metadata_that_fails_the_info_hash_bans_its_sender_and_the_honest_seeder_is_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, torrent, hash) = torrent(dir.path(), "song.bin", 300 << 15, "udp://127.0.0.1:9/announce");
    let info_len = metainfo_len(&torrent);
    // Same size, wrong bytes: only the SHA-1 check can catch it.
    let liar = MetadataServer::start(hash, info_len as u64, vec![b'x'; info_len]);
    let downloads = dir.path().join("downloads");

    // The liar alone: its metadata is refused, it is banned, nothing is written.
    let link = format!("magnet:?xt=urn:btih:{}&x.pe={}", hex::encode(hash), liar.addr);
    let mut leecher = Running::start(&mut peer_command(&link, &downloads));
    let failed = leecher.wait_for_line(|line| line.contains("metadata_failed"), Duration::from_secs(20));
    let failed: serde_json::Value = serde_json::from_str(&failed.expect("a metadata_failed event")).expect("json");
    assert_eq!(failed["senders"], serde_json::json!([liar.addr.to_string()]));
    let dropped = leecher.wait_for_line(|line| line.contains("peer_disconnected"), Duration::from_secs(10));
    assert!(dropped.is_some_and(|line| line.contains("banned")), "{}", leecher.stderr());
    let served = liar.connections();
    leecher.interrupt(Duration::from_secs(10));
    assert_eq!(served, liar.connections(), "the banned liar was dialled again");
    assert!(listing(&downloads).is_empty(), "written: {:?}", listing(&downloads));

    // The liar and an honest seeder: the download completes from the right metadata.
    let (_seeder, seeder_addr) = start_seeder(&torrent, data.parent().expect("src"));
    let link = format!("{link}&x.pe={seeder_addr}");
    let mut leecher = Running::start(peer_command(&link, &downloads).arg("--exit-on-complete"));
    expect_complete(&mut leecher, Duration::from_secs(60));
    assert_eq!(std::fs::read(&data).expect("original"), std::fs::read(downloads.join("song.bin")).expect("copy"));
}

/// A v2 magnet link (`xt=urn:btmh:`): a peer that serves the right info dictionary but forged piece-layer hashes is
/// banned (not dialled again, nothing written); with an honest seeder beside it, the layers come from the seeder.
#[test]
fn piece_layer_hashes_that_do_not_prove_the_root_ban_their_sender_and_the_honest_seeder_is_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (data, torrent, parsed) = film(dir.path(), "--v2");
    let v2 = parsed.info_hash_v2().expect("a v2 torrent");
    let liar = MetadataServer::start(v2.truncated().0, parsed.info_bytes.len() as u64, parsed.info_bytes.to_vec());
    let downloads = dir.path().join("downloads");

    let link = format!("magnet:?xt=urn:btmh:1220{v2}&dn=film.bin&x.pe={}", liar.addr);
    let mut leecher = Running::start(&mut peer_command(&link, &downloads));
    let dropped = leecher.wait_for_line(|line| line.contains("peer_disconnected"), Duration::from_secs(20));
    assert!(dropped.is_some_and(|line| line.contains("do not prove")), "{}", leecher.stderr());
    let served = liar.connections();
    assert!(leecher.wait_for_line(|line| line.contains("peer_connected"), Duration::from_secs(5)).is_none());
    leecher.interrupt(Duration::from_secs(10));
    assert_eq!(served, liar.connections(), "the banned liar was dialled again");
    assert!(listing(&downloads).is_empty(), "written: {:?}", listing(&downloads));

    let (_seeder, seeder_addr) = start_seeder(&torrent, data.parent().expect("src"));
    let link = format!("{link}&x.pe={seeder_addr}");
    let mut leecher = Running::start(peer_command(&link, &downloads).arg("--exit-on-complete"));
    expect_complete(&mut leecher, Duration::from_secs(60));
    assert_eq!(std::fs::read(&data).expect("original"), std::fs::read(downloads.join("film.bin")).expect("copy"));
    assert_eq!(listing(&downloads), ["film.bin", "film.bin.torrent"]);
}

/// A hybrid's link (both hashes) whose only peer serves the info dictionary over a v1 connection (it answers our
/// upgrade bit with the v1 hash) and so is never asked for the piece layers: after peer::magnet::LAYER_PATIENCE
/// (10 s) without them, the torrent is saved without its layers, both hashes intact, for the v1 pieces to check.
#[test]
fn a_hybrid_link_whose_peers_send_no_piece_layers_is_saved_without_them_after_ten_seconds() {
    let fetched = fetch_a_hybrid_from_a_v1_peer(true);
    // 10 s from the metadata, give or take the fetch loop's half-second tick.
    assert!(fetched.waited >= Duration::from_secs(9), "gave up on the layers after {:?}", fetched.waited);
    assert!(
        fetched
            .stderr
            .contains("no peer sent the piece layers of 1 file within 10 s; downloading over v1 (SHA-1) only"),
        "{}",
        fetched.stderr
    );
    assert!(fetched.upgrades_asked >= 1, "our handshake did not ask to upgrade to v2");
}

/// The same hybrid from a link with only its v1 hash (`urn:btih:`, the commonest kind): no connection can be v2,
/// so no layer can be asked for, and the torrent is saved without them at once instead of after 10 s.
#[test]
fn a_v1_link_to_a_hybrid_is_saved_without_its_layers_at_once() {
    let fetched = fetch_a_hybrid_from_a_v1_peer(false);
    assert!(
        fetched.waited < Duration::from_secs(5),
        "waited {:?} for layers nobody could be asked for",
        fetched.waited
    );
    assert!(fetched.stderr.contains("a v1 link (btih only) cannot ask for its piece layers"), "{}", fetched.stderr);
}

/// `DIR/src/film.bin` (300 pieces of 16 KiB) and its torrent `DIR/film.torrent` made with `mode` (`--v2` or
/// `--hybrid`), as read back.
fn film(dir: &Path, mode: &str) -> (PathBuf, PathBuf, metainfo::Torrent) {
    let data = dir.join("src").join("film.bin");
    write_pseudo_random(&data, 300 << 14, 7);
    let torrent = dir.join("film.torrent");
    common::run_ok(
        Command::new(bin("mktorrent"))
            .args([mode, "-q", "-d", "--no-created-by", "-l", "14", "-o"])
            .arg(&torrent)
            .arg(&data),
    );
    let parsed = metainfo::Torrent::from_bytes_any(&std::fs::read(&torrent).expect("torrent")).expect("valid");
    (data, torrent, parsed)
}

struct HybridFetched {
    /// From the metadata's arrival to the torrent's being saved.
    waited: Duration,
    stderr: String,
    upgrades_asked: usize,
}

/// A magnet link (with the v2 hash too when `with_v2`) to a hybrid whose only peer serves the info dictionary over
/// v1 connections: the torrent must be saved with both hashes and no piece layers, and no hash request sent.
fn fetch_a_hybrid_from_a_v1_peer(with_v2: bool) -> HybridFetched {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, _, parsed) = film(dir.path(), "--hybrid");
    let v2 = parsed.info_hash_v2().expect("a hybrid");
    let server = MetadataServer::start(parsed.info_hash.0, parsed.info_bytes.len() as u64, parsed.info_bytes.to_vec());
    let downloads = dir.path().join("downloads");
    let btmh = if with_v2 { format!("&xt=urn:btmh:1220{v2}") } else { String::new() };
    let link = format!("magnet:?xt=urn:btih:{}{btmh}&dn=film.bin&x.pe={}", parsed.info_hash, server.addr);
    let mut leecher = Running::start(&mut peer_command(&link, &downloads));
    let received = leecher.wait_for_line(|line| line.contains("metadata_received"), Duration::from_secs(20));
    assert!(received.is_some(), "no metadata; stderr:\n{}", leecher.stderr());
    let since = std::time::Instant::now();
    let saved = leecher.wait_for_line(|line| line.contains("torrent_saved"), Duration::from_secs(30));
    let waited = since.elapsed();
    assert!(saved.is_some(), "the torrent was never saved; stderr:\n{}", leecher.stderr());
    leecher.interrupt(Duration::from_secs(10));
    assert_eq!(server.hash_requests(), 0, "hash requests went over a v1 connection");
    let saved = metainfo::Torrent::from_bytes_any(&std::fs::read(downloads.join("film.bin.torrent")).expect("saved"))
        .expect("a hybrid without its layers reads");
    assert_eq!((saved.info_hash, saved.info_hash_v2()), (parsed.info_hash, Some(v2)));
    assert!(saved.v2.iter().flat_map(|v2| &v2.files).all(|file| file.piece_layer.is_empty()));
    HybridFetched { waited, stderr: leecher.stderr(), upgrades_asked: server.upgrades_asked() }
}

#[test]
fn a_peer_claiming_four_gib_of_metadata_is_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hash = [7u8; 20];
    let liar = MetadataServer::start(hash, 4 << 30, Vec::new());
    let link = format!("magnet:?xt=urn:btih:{}&x.pe={}", hex::encode(hash), liar.addr);
    let mut leecher = Running::start(&mut peer_command(&link, &dir.path().join("downloads")));
    let dropped = leecher.wait_for_line(|line| line.contains("peer_disconnected"), Duration::from_secs(20));
    let dropped = dropped.unwrap_or_else(|| panic!("not dropped; stderr:\n{}", leecher.stderr()));
    assert!(dropped.contains("4294967296 bytes of metadata, more than the 33554432-byte cap"), "{dropped}");
    let connections = liar.connections();
    // Banned: not dialled again, though `x.pe` peers are otherwise retried every few seconds.
    assert!(leecher.wait_for_line(|line| line.contains("peer_connected"), Duration::from_secs(7)).is_none());
    assert_eq!(connections, liar.connections());
    let status = leecher.interrupt(Duration::from_secs(10));
    assert!(status.is_some_and(|status| !status.success()));
    assert!(leecher.stderr().contains("stopped before the metadata arrived"), "{}", leecher.stderr());
}

/// Length of `torrent`'s info dictionary.
fn metainfo_len(torrent: &Path) -> usize {
    let parsed = metainfo::Torrent::from_bytes(&std::fs::read(torrent).expect("torrent")).expect("valid");
    parsed.info_bytes.len()
}

/// A peer that speaks BEP 10 and answers every ut_metadata request from `metadata`, which it claims is
/// `claimed_size` bytes: a liar of our choosing. It answers every BEP 52 hash request with hashes of zeros, the
/// right count but no proof of anything, and counts them. It answers every handshake with `info_hash`, whatever
/// was asked, so a hybrid's connection to it stays v1.
struct MetadataServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    /// Hash requests received, and handshakes received with the v2 upgrade bit, over all connections.
    hash_requests: Arc<AtomicUsize>,
    upgrades_asked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl MetadataServer {
    fn start(info_hash: [u8; 20], claimed_size: u64, metadata: Vec<u8>) -> MetadataServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let (connections, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (hash_requests, upgrades_asked) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (count, stopped) = (connections.clone(), stop.clone());
        let counters = Counters { hash_requests: hash_requests.clone(), upgrades_asked: upgrades_asked.clone() };
        let metadata = Arc::new(metadata);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        let (metadata, counters) = (metadata.clone(), counters.clone());
                        std::thread::spawn(move || serve(stream, info_hash, claimed_size, &metadata, &counters));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        MetadataServer { addr, connections, hash_requests, upgrades_asked, stop }
    }

    fn hash_requests(&self) -> usize {
        self.hash_requests.load(Ordering::Relaxed)
    }

    fn upgrades_asked(&self) -> usize {
        self.upgrades_asked.load(Ordering::Relaxed)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct Counters {
    hash_requests: Arc<AtomicUsize>,
    upgrades_asked: Arc<AtomicUsize>,
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    mut stream: TcpStream,
    info_hash: [u8; 20],
    claimed_size: u64,
    metadata: &[u8],
    counters: &Counters,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut theirs = [0u8; peer_wire::HANDSHAKE_LEN];
    stream.read_exact(&mut theirs)?;
    if let Ok(Some((handshake, _))) = Handshake::decode(&theirs)
        && handshake.has(ReservedBit::V2)
    {
        counters.upgrades_asked.fetch_add(1, Ordering::Relaxed);
    }
    let mut ours = Handshake::new(info_hash, *b"-XX0001-liarliarliar");
    ours.set(ReservedBit::EXTENSION_PROTOCOL, true);
    stream.write_all(&ours.encode())?;
    // metadata_size is written by hand: the codec's field is a u32 and this liar claims more.
    let handshake = format!("d1:md11:ut_metadatai3ee13:metadata_sizei{claimed_size}ee");
    let mut out = Vec::new();
    Message::Extended { id: 0, payload: handshake.as_bytes() }.encode(&mut out);
    stream.write_all(&out)?;
    let mut their_id = None;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut used_total = 0;
        let mut replies = Vec::new();
        while let Ok(Some((message, used))) = peer_wire::decode(&buf[used_total..], peer_wire::MAX_MESSAGE_LEN) {
            used_total += used;
            if let Message::HashRequest { pieces_root, base_layer, index, length, proof_layers } = message {
                counters.hash_requests.fetch_add(1, Ordering::Relaxed);
                let range = metainfo::merkle_proof::HashRange { base_layer, index, length, proof_layers };
                let zeros = vec![0u8; usize::try_from(range.hash_count()).unwrap_or(0).min(1 << 16) * 32];
                let forged = Message::Hashes { pieces_root, base_layer, index, length, proof_layers, hashes: &zeros };
                forged.encode(&mut replies);
                continue;
            }
            let Message::Extended { id, payload } = message else { continue };
            if id == 0 {
                their_id = common::ut_metadata_id(payload);
            } else if let (Some(their_id), Ok(MetadataMessage::Request { piece })) =
                (their_id, MetadataMessage::decode(payload, 0))
            {
                let start = piece as usize * peer_wire::METADATA_PIECE_LEN;
                let end = (start + peer_wire::METADATA_PIECE_LEN).min(metadata.len());
                let mut reply = Vec::new();
                let total_size = u32::try_from(claimed_size).unwrap_or(u32::MAX);
                match metadata.get(start..end) {
                    Some(block) => MetadataMessage::Data { piece, total_size, block }.encode(&mut reply),
                    None => MetadataMessage::Reject { piece }.encode(&mut reply),
                }
                Message::Extended { id: their_id, payload: &reply }.encode(&mut replies);
            }
        }
        buf.drain(..used_total);
        stream.write_all(&replies)?;
    }
}
