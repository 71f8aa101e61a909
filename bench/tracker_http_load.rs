//! HTTP announce load for our tracker's `--http` front end: raw HTTP/1.1 over keep-alive `TcpStream`s, one
//! thread per connection, standard library only (built by bench/tracker_http_load.sh with `rustc -O`).
//!
//! The swarm space is bounded: TORRENTS info-hashes × PORTS peer ports on 127.0.0.1 (a peer is its address), so
//! after enough announces the tracker holds at most TORRENTS × PORTS peers and its memory should stop growing.
//! Each announce picks a random torrent and port, a random `left` (a third are seeders, `left=0`) and an event
//! (80 % none, 10 % started, 5 % completed, 5 % stopped, which removes the peer until it comes back).
//!
//! Every reply must be `200` with a body starting `d8:complete` (a bencoded announce reply, not a failure);
//! anything else is counted. A connection the server closes (its 120 s lifetime) is reopened and the announce
//! sent again; those are counted as reconnects, not failures, unless the retry fails too.
//!
//! While it runs it samples the tracker's VmRSS (/proc/PID/status) every second and prints one line per second;
//! at the end it prints the rate, the failures and VmRSS at 0, 25, 50, 75 and 100 % of the run (progress is
//! announces done / ANNOUNCES, or elapsed / MAX_SECONDS if that is further along).
//!
//! Usage: tracker_http_load ADDR PID ANNOUNCES CONNECTIONS TORRENTS PORTS MAX_SECONDS

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Counters {
    claimed: AtomicU64,
    ok: AtomicU64,
    not_200: AtomicU64,
    bad_body: AtomicU64,
    io_failed: AtomicU64,
    reconnects: AtomicU64,
    started: AtomicU64,
    completed: AtomicU64,
    stopped: AtomicU64,
    seeders: AtomicU64,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: spreads the torrent index over the info-hash bytes (and so over the shards)
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        out.push(b'%');
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

fn twenty(seed: u64) -> [u8; 20] {
    let mut out = [0u8; 20];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let word = mix(seed.wrapping_add(i as u64)).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    out
}

fn build_request(out: &mut Vec<u8>, rng: &mut Rng, torrents: u64, ports: u64, c: &Counters) {
    let torrent = rng.below(torrents);
    let port = rng.below(ports);
    let seeder = rng.below(3) == 0;
    let roll = rng.below(100);
    let (event, left) = match roll {
        0..=9 => ("started", if seeder { 0 } else { 1 + rng.below(1 << 30) }),
        10..=14 => ("completed", 0),
        15..=19 => ("stopped", if seeder { 0 } else { 1 + rng.below(1 << 30) }),
        _ => ("", if seeder { 0 } else { 1 + rng.below(1 << 30) }),
    };
    match event {
        "started" => c.started.fetch_add(1, Ordering::Relaxed),
        "completed" => c.completed.fetch_add(1, Ordering::Relaxed),
        "stopped" => c.stopped.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
    if left == 0 {
        c.seeders.fetch_add(1, Ordering::Relaxed);
    }
    out.clear();
    out.extend_from_slice(b"GET /announce?info_hash=");
    push_escaped(out, &twenty(torrent.wrapping_mul(0x1_0000_0001)));
    out.extend_from_slice(b"&peer_id=");
    let mut peer_id = twenty((torrent << 20 | port) ^ 0x5EED);
    peer_id[..8].copy_from_slice(b"-BL0001-");
    push_escaped(out, &peer_id);
    let _ = write!(
        out,
        "&port={}&uploaded={}&downloaded={}&left={}&compact=1&numwant=50",
        10_000 + port,
        rng.below(1 << 30),
        rng.below(1 << 30),
        left
    );
    if !event.is_empty() {
        let _ = write!(out, "&event={event}");
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: tracker_http_load\r\n\r\n");
}

enum Outcome {
    Ok { keep_alive: bool },
    Not200,
    BadBody { keep_alive: bool },
    Io,
}

/// Sends one request on `conn` and reads the reply. `Io` means the connection is unusable (closed, reset, junk).
fn exchange(conn: &mut BufReader<TcpStream>, request: &[u8], line: &mut String, body: &mut Vec<u8>) -> Outcome {
    if conn.get_mut().write_all(request).is_err() {
        return Outcome::Io;
    }
    line.clear();
    match conn.read_line(line) {
        Ok(0) | Err(_) => return Outcome::Io,
        Ok(_) => {}
    }
    let status_ok = line.starts_with("HTTP/1.1 200 ");
    if !line.starts_with("HTTP/1.") {
        return Outcome::Io;
    }
    let mut length: Option<usize> = None;
    let mut keep_alive = line.starts_with("HTTP/1.1");
    loop {
        line.clear();
        match conn.read_line(line) {
            Ok(0) | Err(_) => return Outcome::Io,
            Ok(_) => {}
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().ok();
            } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            }
        }
    }
    let Some(length) = length else { return Outcome::Io };
    body.resize(length, 0);
    if conn.read_exact(body).is_err() {
        return Outcome::Io;
    }
    if !status_ok {
        return Outcome::Not200;
    }
    if body.starts_with(b"d8:complete") {
        Outcome::Ok { keep_alive }
    } else {
        Outcome::BadBody { keep_alive }
    }
}

fn connect(addr: &str) -> Option<BufReader<TcpStream>> {
    for _ in 0..50 {
        if let Ok(stream) = TcpStream::connect(addr) {
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            return Some(BufReader::with_capacity(16 * 1024, stream));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn worker(addr: String, id: u64, total: u64, torrents: u64, ports: u64, c: Arc<Counters>, stop: Arc<AtomicBool>) {
    let mut rng = Rng(mix(id + 1) | 1);
    let mut request = Vec::with_capacity(512);
    let mut line = String::with_capacity(256);
    let mut body = Vec::with_capacity(1024);
    let mut conn = connect(&addr);
    while !stop.load(Ordering::Relaxed) {
        if c.claimed.fetch_add(1, Ordering::Relaxed) >= total {
            break;
        }
        build_request(&mut request, &mut rng, torrents, ports, &c);
        let mut tries = 0;
        loop {
            tries += 1;
            let Some(stream) = conn.as_mut() else {
                c.io_failed.fetch_add(1, Ordering::Relaxed);
                conn = connect(&addr);
                break;
            };
            match exchange(stream, &request, &mut line, &mut body) {
                Outcome::Ok { keep_alive } => {
                    c.ok.fetch_add(1, Ordering::Relaxed);
                    if !keep_alive {
                        conn = connect(&addr);
                    }
                }
                Outcome::BadBody { keep_alive } => {
                    c.bad_body.fetch_add(1, Ordering::Relaxed);
                    if c.bad_body.load(Ordering::Relaxed) <= 3 {
                        eprintln!("# bad body: {}", String::from_utf8_lossy(&body[..body.len().min(200)]));
                    }
                    if !keep_alive {
                        conn = connect(&addr);
                    }
                }
                Outcome::Not200 => {
                    c.not_200.fetch_add(1, Ordering::Relaxed);
                    conn = connect(&addr);
                }
                Outcome::Io => {
                    conn = connect(&addr);
                    if tries < 2 {
                        c.reconnects.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    c.io_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            break;
        }
    }
}

fn rss_kib(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 8 {
        eprintln!("usage: {} ADDR PID ANNOUNCES CONNECTIONS TORRENTS PORTS MAX_SECONDS", args[0]);
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let pid = args[2].clone();
    let num = |i: usize| -> u64 { args[i].parse().unwrap_or_else(|_| panic!("not a number: {}", args[i])) };
    let (total, connections, torrents, ports, max_s) = (num(3), num(4), num(5), num(6), num(7));
    assert!(torrents > 0 && ports > 0 && ports < 55_000 && connections > 0);

    let c = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (rss0, _) = rss_kib(&pid);
    println!(
        "# {total} announces over {connections} keep-alive connections to {addr}: {torrents} torrents x {ports} peer ports \
         (at most {} peers), stop after {max_s} s",
        torrents * ports
    );
    println!("# {:>5} {:>10} {:>9} {:>9} {:>8}", "t_s", "announces", "per_s", "rss_MiB", "failures");
    let start = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|id| {
            let (addr, c, stop) = (addr.clone(), c.clone(), stop.clone());
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || worker(addr, id, total, torrents, ports, c, stop))
                .expect("spawn")
        })
        .collect();

    // marks[i] = (progress %, t, announces, rss KiB), the first sample at or past each quarter
    let mut marks: Vec<(u32, f64, u64, u64)> = vec![(0, 0.0, 0, rss0)];
    let mut samples: Vec<u64> = vec![rss0];
    let failures = |c: &Counters| {
        c.not_200.load(Ordering::Relaxed) + c.bad_body.load(Ordering::Relaxed) + c.io_failed.load(Ordering::Relaxed)
    };
    let mut last_done = 0;
    let mut tick = 0u64;
    loop {
        tick += 1;
        let due = start + Duration::from_millis(100 * tick);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let done = c.ok.load(Ordering::Relaxed) + failures(&c);
        let t = start.elapsed().as_secs_f64();
        let finished = threads.iter().all(|h| h.is_finished());
        let progress = (done as f64 / total as f64).max(t / max_s as f64).min(1.0);
        let (rss, _) = rss_kib(&pid);
        while marks.len() < 4 && progress * 100.0 >= f64::from(25 * marks.len() as u32) {
            marks.push((25 * marks.len() as u32, t, done, rss));
        }
        if tick.is_multiple_of(10) {
            samples.push(rss);
            println!("  {:>5} {:>10} {:>9} {:>9.1} {:>8}", tick / 10, done, done - last_done, mib(rss), failures(&c));
            last_done = done;
        }
        if finished {
            break;
        }
        if t >= max_s as f64 {
            stop.store(true, Ordering::Relaxed);
        }
    }
    for h in threads {
        let _ = h.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (rss_end, hwm) = rss_kib(&pid);
    let done = c.ok.load(Ordering::Relaxed) + failures(&c);
    marks.push((100, elapsed, done, rss_end));
    samples.push(rss_end);

    let ok = c.ok.load(Ordering::Relaxed);
    println!("#");
    println!(
        "# announces: {done} in {elapsed:.1} s = {:.0} per second ({} connections){}",
        done as f64 / elapsed,
        connections,
        if done < total { "  (stopped by the time limit)" } else { "" }
    );
    println!(
        "# replies 200 + d8:complete: {ok}; failures: {} (non-200: {}, other body: {}, I/O after a retry: {}); \
         reconnects (server closed, retried): {}",
        failures(&c),
        c.not_200.load(Ordering::Relaxed),
        c.bad_body.load(Ordering::Relaxed),
        c.io_failed.load(Ordering::Relaxed),
        c.reconnects.load(Ordering::Relaxed)
    );
    println!(
        "# events sent: started {}, completed {}, stopped {}; left=0 in {}",
        c.started.load(Ordering::Relaxed),
        c.completed.load(Ordering::Relaxed),
        c.stopped.load(Ordering::Relaxed),
        c.seeders.load(Ordering::Relaxed)
    );
    println!("# tracker VmRSS through the run:");
    println!("#   {:>9} {:>7} {:>10} {:>9}", "progress", "t_s", "announces", "rss_MiB");
    for (pct, t, n, rss) in &marks {
        println!("#   {:>8}% {:>7.1} {:>10} {:>9.1}", pct, t, n, mib(*rss));
    }
    let max = samples.iter().copied().max().unwrap_or(0);
    println!("#   peak VmHWM {:.1} MiB; largest 1 s sample {:.1} MiB", mib(hwm), mib(max));
    if failures(&c) > 0 {
        std::process::exit(1);
    }
}
