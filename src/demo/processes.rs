//! What the demo starts, and stops again by its own handles: peer processes and the tracker thread.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use metainfo::Torrent;
use tracker::server::{Config, NamedTorrent, Stats, Tracker};

/// The hidden first argument that makes the demo's own executable run as `peer` (see [`super::main`]).
pub const PEER_ROLE: &str = "--run-peer";

/// Stderr lines kept per peer, shown when it fails.
const STDERR_LINES: usize = 40;

/// A line a peer printed on stdout (one JSON event, since peers run with --json), or the end of its output.
#[derive(Debug)]
pub enum Output {
    Line(String),
    Closed,
}

/// One `peer` program, run as a child of the demo; killed when dropped if it is still running.
pub struct PeerProcess {
    pub label: String,
    child: Child,
    stderr: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl PeerProcess {
    /// Starts `peer ARGS...` (the demo's own executable in its peer role); its stdout lines go to `output`
    /// tagged with `index`.
    pub fn spawn(
        index: usize,
        label: &str,
        args: &[OsString],
        output: Sender<(usize, Output)>,
    ) -> anyhow::Result<PeerProcess> {
        let exe = std::env::current_exe().context("finding the demo's own executable")?;
        let mut child = Command::new(&exe)
            .arg(PEER_ROLE)
            // The demo's swarm is on loopback and must stay there: the public DHT routers are not asked, and
            // nothing is announced to the local network.
            .args(["--no-dht", "--no-lsd"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {label} ({} {PEER_ROLE})", exe.display()))?;
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if output.send((index, Output::Line(line))).is_err() {
                        return;
                    }
                }
                let _ = output.send((index, Output::Closed));
            });
        }
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_reader = child.stderr.take().map(|pipe| {
            let kept = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut kept = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if kept.len() == STDERR_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            })
        });
        Ok(PeerProcess { label: label.to_owned(), child, stderr, stderr_reader })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the peer to stop as Ctrl-C does (SIGINT: it announces `stopped` and prints its totals).
    /// Returns false if it could not be asked (it has exited, or the platform has no signals).
    pub fn interrupt(&mut self) -> bool {
        // Only a child not yet waited for still owns its PID: never signal a number that may have been reused.
        if !matches!(self.child.try_wait(), Ok(None)) {
            return false;
        }
        send_interrupt(&self.child)
    }

    /// Waits up to `timeout` for the peer to exit (kills it after that), then reads the rest of its stderr.
    pub fn wait_or_kill(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        status
    }

    /// The last lines the peer wrote on stderr, indented, for error messages.
    pub fn stderr_tail(&self) -> String {
        let kept = self.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.iter().map(|line| format!("    {line}\n")).collect()
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(unix)]
fn send_interrupt(child: &Child) -> bool {
    use rustix::process::{Pid, Signal, kill_process};
    kill_process(Pid::from_child(child), Signal::INT).is_ok()
}

#[cfg(not(unix))]
fn send_interrupt(_child: &Child) -> bool {
    false
}

/// Our tracker, serving one torrent on a thread of the demo; stopped (and joined) when dropped.
pub struct TrackerThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Stats>>,
    /// A handle on the same swarms, for reading the tracker's journal while it serves.
    pub view: Tracker,
}

impl TrackerThread {
    /// Serves exactly `torrent` on `socket` (already bound: its port is in the torrent's announce URL).
    pub fn start(socket: UdpSocket, torrent: &Torrent, torrent_path: &Path) -> anyhow::Result<TrackerThread> {
        let named = vec![NamedTorrent {
            info_hash: torrent.info_hash.0,
            v2_info_hash: None,
            name: torrent.info.name.clone(),
            total_length: torrent.info.total_length(),
        }];
        // Peers re-announce every 10 s, so a leecher that started before another still hears of it.
        let config = Config { interval: 10, peer_timeout: 30, ..Config::default() };
        let mut tracker = Tracker::new(config, named, false);
        let view = tracker.http_handle();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tracker".into())
            .spawn(move || {
                if let Err(err) = tracker.serve(&socket, &flag) {
                    eprintln!("demo: tracker stopped: {err}");
                }
                tracker.stats()
            })
            .with_context(|| format!("starting the tracker for {}", torrent_path.display()))?;
        Ok(TrackerThread { stop, thread: Some(thread), view })
    }

    /// Stops the tracker and returns its counters.
    pub fn stop(mut self) -> Option<Stats> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|thread| thread.join().ok())
    }
}

impl Drop for TrackerThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
