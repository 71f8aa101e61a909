//! End-to-end: a magnet link's metadata fetch under attack. Hostile peers of this test's own (they speak the real
//! wire protocol) are named in the link's `x.pe`, and connect before the honest seeder, which comes up 2 s after
//! our leecher: sizes that are rejected or hung up on, stallers that push unasked data, sixteen stallers that
//! fill every connection slot, four sizes just under the cap answered with garbage at full speed. In each, the
//! leecher completes its download from the honest seeder within 15 s, and its peak RSS stays under 64 MiB. A v2
//! seeder flooded with hash requests it must reject drops the flooders and still serves an honest leecher.
//! The figures are printed for the note.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::process::Running;
use common::{bin, free_tcp_port, free_udp_port, make_torrent, write_pseudo_random};
use peer_wire::{Handshake, Message, MetadataMessage, ReservedBit};

/// The cap on the leecher's peak resident memory under every attack.
const MAX_PEAK_RSS_KIB: u64 = 64 * 1024;
/// The leecher completes within this, counted from its start.
const COMPLETE_WITHIN: Duration = Duration::from_secs(15);
const METADATA_CAP: u64 = 32 << 20;

/// What a hostile peer does once its handshakes are through.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    /// Offers `size` bytes of metadata and rejects every request.
    Rejects { size: u64 },
    /// Offers `size` bytes and hangs up right after its extended handshake.
    HangsUp { size: u64 },
    /// Offers `size` (the true size), never answers, and sends data for piece 999, which nobody asked, every 5 s.
    Stalls { size: u64 },
    /// Offers `size` and answers every request at once with garbage of the right length.
    SendsGarbage { size: u64 },
}

struct HostileServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl HostileServer {
    fn start(behaviour: Hostile) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let (connections, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, stopped) = (connections.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        let stopped = stopped.clone();
                        std::thread::spawn(move || hostile(stream, behaviour, &stopped));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        HostileServer { addr, connections, stop }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn hostile(mut stream: TcpStream, behaviour: Hostile, stop: &AtomicBool) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut theirs = [0u8; peer_wire::HANDSHAKE_LEN];
    read_fully(&mut stream, &mut theirs, stop)?;
    let Ok(Some((handshake, _))) = Handshake::decode(&theirs) else { return Ok(()) };
    let mut ours = Handshake::new(handshake.info_hash, *b"-XX0001-hostilepeer!");
    ours.set(ReservedBit::EXTENSION_PROTOCOL, true);
    stream.write_all(&ours.encode())?;
    let size = match behaviour {
        Hostile::Rejects { size } | Hostile::HangsUp { size } | Hostile::Stalls { size } => size,
        Hostile::SendsGarbage { size } => size,
    };
    let mut out = Vec::new();
    let payload = format!("d1:md11:ut_metadatai3ee13:metadata_sizei{size}ee");
    Message::Extended { id: 0, payload: payload.as_bytes() }.encode(&mut out);
    stream.write_all(&out)?;
    if let Hostile::HangsUp { .. } = behaviour {
        return Ok(());
    }
    let total_size = u32::try_from(size).unwrap_or(u32::MAX);
    let garbage = vec![0x5a; peer_wire::METADATA_PIECE_LEN];
    let (mut their_id, mut buf, mut chunk) = (None, Vec::new(), vec![0u8; 64 * 1024]);
    let mut last_push = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut replies = Vec::new();
        if let (Hostile::Stalls { .. }, Some(id)) = (behaviour, their_id)
            && last_push.elapsed() >= Duration::from_secs(5)
        {
            last_push = Instant::now();
            let mut data = Vec::new();
            MetadataMessage::Data { piece: 999, total_size, block: &garbage[..100] }.encode(&mut data);
            Message::Extended { id, payload: &data }.encode(&mut replies);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(err) if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(err) => return Err(err),
        }
        let mut used_total = 0;
        while let Ok(Some((message, used))) = peer_wire::decode(&buf[used_total..], peer_wire::MAX_MESSAGE_LEN) {
            used_total += used;
            let Message::Extended { id, payload } = message else { continue };
            if id == 0 {
                their_id = common::ut_metadata_id(payload);
                continue;
            }
            let (Some(id), Ok(MetadataMessage::Request { piece })) = (their_id, MetadataMessage::decode(payload, 0))
            else {
                continue;
            };
            let mut reply = Vec::new();
            match behaviour {
                Hostile::Rejects { .. } => MetadataMessage::Reject { piece }.encode(&mut reply),
                Hostile::SendsGarbage { size } => {
                    let start = u64::from(piece) * peer_wire::METADATA_PIECE_LEN as u64;
                    let len = size.saturating_sub(start).min(peer_wire::METADATA_PIECE_LEN as u64) as usize;
                    MetadataMessage::Data { piece, total_size, block: &garbage[..len] }.encode(&mut reply);
                }
                Hostile::Stalls { .. } | Hostile::HangsUp { .. } => continue,
            }
            Message::Extended { id, payload: &reply }.encode(&mut replies);
        }
        buf.drain(..used_total);
        stream.write_all(&replies)?;
    }
    Ok(())
}

fn read_fully(stream: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        if stop.load(Ordering::Relaxed) {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(err) if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// The peak resident set (VmHWM) of process `pid` in KiB, while it runs.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

struct Outcome {
    stdout: Vec<String>,
    /// Connections each hostile peer took, in the order given.
    connections: Vec<usize>,
}

/// Our leecher is started from a magnet link whose `x.pe` names `hostiles` and with `--peer` naming the honest
/// seeder, which comes up 2 s later; waits for the leecher to complete the download.
fn fetch_under_attack(what: &str, hostiles: &[Hostile]) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("src").join("film.bin");
    write_pseudo_random(&data, 1 << 20, 11);
    let tracker = format!("udp://127.0.0.1:{}/announce", free_udp_port());
    let (torrent, hash) = make_torrent(&data, &tracker, 15);
    let servers: Vec<HostileServer> = hostiles.iter().map(|&behaviour| HostileServer::start(behaviour)).collect();
    let seeder_port = free_tcp_port();
    let x_pe: String = servers.iter().map(|server| format!("&x.pe={}", server.addr)).collect();
    let link = format!("magnet:?xt=urn:btih:{}{x_pe}", hex::encode(hash));
    let downloads = dir.path().join("downloads");
    let started = Instant::now();
    let mut leecher = Running::start(
        Command::new(bin("peer"))
            .args(["--no-dht", "--no-lsd", "--json", "--exit-on-complete", "0"])
            .arg(&link)
            .arg("--dir")
            .arg(&downloads)
            .arg("--peer")
            .arg(format!("127.0.0.1:{seeder_port}")),
    );
    let pid = leecher.pid();
    std::thread::sleep(Duration::from_secs(2));
    let mut seeder = Running::start(
        Command::new(bin("peer"))
            .args(["--no-dht", "--no-lsd", "--bind", "127.0.0.1"])
            .arg(seeder_port.to_string())
            .arg(&torrent)
            .arg("--dir")
            .arg(data.parent().expect("parent")),
    );
    let mut peak = 0;
    let status = loop {
        if let Some(rss) = peak_rss_kib(pid) {
            peak = peak.max(rss);
        }
        if let Some(status) = leecher.wait(Duration::from_millis(100)) {
            break Some(status);
        }
        if started.elapsed() > COMPLETE_WITHIN {
            break None;
        }
    };
    let took = started.elapsed();
    let stdout = leecher.rest_of_stdout(Duration::from_secs(1));
    let connections: Vec<usize> = servers.iter().map(|server| server.connections.load(Ordering::Relaxed)).collect();
    assert!(
        status.is_some_and(|status| status.success()),
        "{what}: the leecher did not complete within {COMPLETE_WITHIN:?} (status {status:?}); hostile connections \
         {connections:?}; stdout {stdout:?}\nstderr:\n{}\nseeder:\n{}",
        leecher.stderr(),
        seeder.stderr()
    );
    common::assert_same_file(&data, &downloads.join("film.bin"));
    seeder.kill();
    eprintln!(
        "{what}: complete in {:.2} s, peak RSS {:.1} MiB, hostile connections {connections:?}",
        took.as_secs_f64(),
        peak as f64 / 1024.0
    );
    assert!(peak > 0, "{what}: the leecher's memory was never read");
    assert!(peak < MAX_PEAK_RSS_KIB, "{what}: peak RSS {peak} KiB");
    // The attack happened: every hostile peer was dialled before the download completed.
    assert!(connections.iter().all(|&count| count > 0), "{what}: hostile peers never dialled: {connections:?}");
    Outcome { stdout, connections }
}

fn disconnect_reasons(outcome: &Outcome) -> Vec<String> {
    common::json_events(&outcome.stdout, "peer_disconnected")
        .iter()
        .filter_map(|event| event["reason"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn four_wrong_sizes_that_reject_every_request_do_not_keep_the_honest_size_out() {
    let hostiles: Vec<Hostile> = (1..=4).map(|n| Hostile::Rejects { size: 1000 * n }).collect();
    let outcome = fetch_under_attack("four rejecting sizes", &hostiles);
    let reasons = disconnect_reasons(&outcome);
    assert!(reasons.iter().any(|reason| reason.contains("refused to send the metadata")), "{reasons:?}");
    assert!(!reasons.iter().any(|reason| reason.contains("sizes are being fetched")), "{reasons:?}");
}

#[test]
fn wrong_sizes_that_hang_up_after_their_handshake_leave_nothing_behind() {
    let hostiles: Vec<Hostile> = (1..=4).map(|n| Hostile::HangsUp { size: 1000 * n }).collect();
    let outcome = fetch_under_attack("four sizes hanging up", &hostiles);
    // They hung up and were dialled again (x.pe peers are retried), and still held nothing back.
    assert!(outcome.connections.iter().all(|&count| count >= 2), "{:?}", outcome.connections);
}

#[test]
fn stallers_pushing_unasked_data_do_not_hold_the_only_piece() {
    let size = metadata_size_of_the_test_torrent();
    let outcome = fetch_under_attack("two stallers with unasked data", &[Hostile::Stalls { size }; 2]);
    // Their unasked data renewed nothing: neither was waited on past its patience, nor is it what completed.
    let received = common::json_events(&outcome.stdout, "metadata_received");
    assert_eq!(received.len(), 1, "{:?}", outcome.stdout);
}

#[test]
fn sixteen_stallers_in_every_slot_make_way_for_the_honest_seeder() {
    let size = metadata_size_of_the_test_torrent();
    let outcome = fetch_under_attack("sixteen stallers", &[Hostile::Stalls { size }; 16]);
    let reasons = disconnect_reasons(&outcome);
    assert!(reasons.iter().any(|reason| reason.contains("while other peers wait")), "rotated out: {reasons:?}");
}

#[test]
fn four_sizes_near_the_cap_answered_with_garbage_stay_within_memory() {
    let hostiles: Vec<Hostile> = (1..=4).map(|n| Hostile::SendsGarbage { size: METADATA_CAP - 1000 * n }).collect();
    let outcome = fetch_under_attack("four near-cap sizes of garbage", &hostiles);
    let reasons = disconnect_reasons(&outcome);
    assert!(reasons.iter().any(|reason| reason.contains("does not match the info-hash")), "a liar banned: {reasons:?}");
}

/// The test torrent's info dictionary is the same size whatever its bytes: one file of 1 MiB, 32 KiB pieces.
fn metadata_size_of_the_test_torrent() -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("film.bin");
    write_pseudo_random(&data, 1 << 20, 11);
    let (torrent, _) = make_torrent(&data, &format!("udp://127.0.0.1:{}/announce", free_udp_port()), 15);
    let parsed = metainfo::Torrent::from_bytes(&std::fs::read(torrent).expect("torrent")).expect("valid");
    parsed.info_bytes.len() as u64
}

#[test]
fn a_v2_seeder_drops_peers_flooding_it_with_hash_requests_and_serves_an_honest_leecher() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("src").join("film.bin");
    write_pseudo_random(&data, 4 << 20, 12);
    let torrent = dir.path().join("film.torrent");
    let tracker = format!("udp://127.0.0.1:{}/announce", free_udp_port());
    common::run_ok(
        Command::new(bin("mktorrent")).args(["--v2", "-l", "15", "-a", &tracker, "-o"]).arg(&torrent).arg(&data),
    );
    let parsed = metainfo::Torrent::from_bytes_any(&std::fs::read(&torrent).expect("torrent")).expect("valid");
    let swarm: [u8; 20] = parsed.info_hash.0;
    let root = parsed.v2.as_ref().and_then(|v2| v2.files.first()?.pieces_root).expect("a root");
    let seeder_addr = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let mut seeder = Running::start(
        Command::new(bin("peer"))
            .args(["--no-dht", "--no-lsd", "--json", "--bind", "127.0.0.1"])
            .arg(seeder_addr.port().to_string())
            .arg(&torrent)
            .arg("--dir")
            .arg(data.parent().expect("parent")),
    );
    assert!(
        seeder.wait_for_line(|line| line.contains("seeding"), Duration::from_secs(30)).is_some(),
        "the seeder never seeded:\n{}",
        seeder.stderr()
    );
    let flooders: Vec<_> =
        (0..16).map(|n| std::thread::spawn(move || flood_hash_requests(seeder_addr, swarm, root, n))).collect();
    let downloads = dir.path().join("downloads");
    let started = Instant::now();
    let mut leecher = Running::start(
        Command::new(bin("peer"))
            .args(["--no-dht", "--no-lsd", "--exit-on-complete", "0"])
            .arg(&torrent)
            .arg("--dir")
            .arg(&downloads)
            .arg("--peer")
            .arg(seeder_addr.to_string()),
    );
    let status = leecher.wait(COMPLETE_WITHIN);
    assert!(status.is_some_and(|status| status.success()), "leecher:\n{}", leecher.stderr());
    common::assert_same_file(&data, &downloads.join("film.bin"));
    let sent: Vec<usize> = flooders.into_iter().map(|flooder| flooder.join().expect("flooder")).collect();
    eprintln!(
        "hash-request flood: the leecher completed in {:.2} s; each flooder was cut off after {sent:?} requests",
        started.elapsed().as_secs_f64()
    );
    for requests in &sent {
        assert!(*requests < 2_000, "a flooder got {requests} requests in before it was dropped");
    }
    let lines = seeder.rest_of_stdout(Duration::from_secs(1));
    let reasons: Vec<String> = common::json_events(&lines, "peer_disconnected")
        .iter()
        .filter_map(|event| event["reason"].as_str().map(str::to_owned))
        .collect();
    // The per-address cap turns some of the sixteen away before they can ask anything; each one let in is dropped
    // for its requests.
    let dropped_for_flooding =
        reasons.iter().filter(|reason| reason.contains("hash requests we cannot answer")).count();
    assert!(dropped_for_flooding >= 8, "{reasons:?}");
}

/// Connects to a v2 seeder and sends hash requests for a range past the file's tree (never answerable) until it
/// is disconnected, within 20 s; returns how many it sent.
fn flood_hash_requests(seeder: SocketAddr, swarm: [u8; 20], root: [u8; 32], n: u8) -> usize {
    let mut stream = TcpStream::connect(seeder).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(10))).expect("timeout");
    let mut ours = Handshake::new(swarm, [b'f', n, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    ours.set(ReservedBit::V2, true);
    stream.write_all(&ours.encode()).expect("handshake");
    let mut batch = Vec::new();
    for _ in 0..100 {
        Message::HashRequest { pieces_root: root, base_layer: 0, index: 1 << 20, length: 4, proof_layers: 0 }
            .encode(&mut batch);
    }
    let (mut sent, mut sink) = (0, vec![0u8; 64 * 1024]);
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        if stream.write_all(&batch).is_err() {
            return sent;
        }
        sent += 100;
        match stream.read(&mut sink) {
            Ok(0) => return sent,
            Err(err) if !matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return sent;
            }
            _ => {}
        }
    }
    panic!("flooder {n} was never disconnected after {sent} hash requests");
}
