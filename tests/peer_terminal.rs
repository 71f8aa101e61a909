//! `peer` on a real terminal, under tmux: the progress bar stays on one line that is redrawn in place, log lines go
//! above it instead of through it, and once complete the bar turns into a seeding line.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::Running;
use common::{bin, free_udp_port, have_tool, make_torrent, write_pseudo_random};

/// A tmux server of this test's own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    /// The visible pane, one string per line, trailing blanks trimmed.
    fn capture(&self) -> Vec<String> {
        let output = self.command().args(["capture-pane", "-p", "-t", "peer"]).output().expect("tmux capture-pane");
        String::from_utf8_lossy(&output.stdout).lines().map(|line| line.trim_end().to_owned()).collect()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

#[test]
fn the_progress_bar_stays_on_one_line_and_becomes_a_seeding_line() {
    if !have_tool("tmux (terminal tests)", Command::new("tmux").arg("-V")) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("src").join("terminal.bin");
    write_pseudo_random(&data, 12 << 20, 3);
    let port = free_udp_port();
    let (torrent, _) = make_torrent(&data, &format!("udp://127.0.0.1:{port}/announce"), 18);
    let (_tracker, _) = Running::start_listening(Command::new(bin("tracker")).arg(&torrent).args([
        "--interval",
        "2",
        "--workers",
        "1",
    ]));
    // A seeder slow enough (4 MB/s) that the leecher's bar is seen moving for a few seconds.
    let (mut seeder, _) = Running::start_listening(
        Command::new(bin("peer"))
            .args(["--no-dht", "--no-lsd"])
            .arg("0")
            .arg(&torrent)
            .arg("--dir")
            .arg(work.path().join("src"))
            .args(["--tracker-timeout", "0.5", "--upload-limit", "4M", "--no-super-seed"]),
    );
    assert!(seeder.wait_for_line(|line| line.starts_with("seeding"), Duration::from_secs(30)).is_some());

    let tmux = Tmux { socket: format!("bt-test-{}", std::process::id()) };
    let leecher = format!(
        "{} 0 {} --dir {} --tracker-timeout 0.5 --no-dht --no-lsd",
        shell_quote(Path::new(bin("peer"))),
        shell_quote(&torrent),
        shell_quote(&work.path().join("leech"))
    );
    let started = tmux
        .command()
        .args(["new-session", "-d", "-s", "peer", "-x", "160", "-y", "40"])
        .arg(format!("{leecher}; sleep 60"))
        .status()
        .expect("tmux new-session");
    assert!(started.success());

    let bar = |line: &String| line.starts_with("terminal.bin [");
    let seeding_line = |line: &String| line.starts_with("terminal.bin seeding: uploaded");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut saw_bar, mut pane) = (false, Vec::new());
    while Instant::now() < deadline {
        pane = tmux.capture();
        let bars = pane.iter().filter(|line| bar(line)).count();
        assert!(bars <= 1, "the bar is drawn on {bars} lines:\n{}", pane.join("\n"));
        for line in &pane {
            // A log line never shares its line with the bar.
            if line.contains("INFO") || line.contains("WARN") {
                assert!(!line.contains("[=") && !line.contains("ETA"), "a log line broke the bar: {line:?}");
            }
        }
        saw_bar |= bars == 1;
        if pane.iter().any(seeding_line) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = pane.join("\n");
    assert!(saw_bar, "never saw the progress bar:\n{text}");
    assert_eq!(pane.iter().filter(|line| seeding_line(line)).count(), 1, "no single seeding line:\n{text}");
    assert!(pane.iter().any(|line| line == "complete: terminal.bin verified"), "{text}");
    assert!(pane.iter().any(|line| line.contains("INFO") && line.contains("peers (")), "no log line:\n{text}");
    assert!(!pane.iter().any(bar), "the bar was left behind after completion:\n{text}");
}
