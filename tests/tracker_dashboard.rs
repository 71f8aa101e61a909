//! The tracker's live page in a real browser: headless Chromium loads `/` while a small swarm of our peers runs,
//! and the rendered DOM must show the torrent, its seeder and leecher counts and the tracker's matches in words.
//! A screenshot is left in a temporary folder for a person to look at.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::process::Running;
use common::{bin, free_udp_port, have_tool, make_torrent, write_pseudo_random};

/// Runs `command` to its end, killing it after `timeout`; returns its stdout.
fn run_bounded(command: &mut Command, timeout: Duration) -> String {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start the browser");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let deadline = Instant::now() + timeout;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish in {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap_or_default()
}

fn chromium(url: &str, extra: &[&str]) -> Command {
    let mut command = Command::new("chromium");
    // Root in CI: Chromium's sandbox needs user namespaces it may not get. The page is our own.
    command
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
        .args(["--virtual-time-budget=5000", "--window-size=1280,900"])
        .args(extra)
        .arg(url);
    command
}

#[test]
fn the_dashboard_shows_the_swarm_and_its_matches_in_a_real_browser() {
    if !have_tool("chromium (headless browser)", Command::new("chromium").arg("--version")) {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("src").join("lecture.bin");
    write_pseudo_random(&data, 2_000_000, 4);
    let port = free_udp_port();
    let (torrent, _) = make_torrent(&data, &format!("udp://127.0.0.1:{port}/announce"), 15);
    let (mut tracker, _) = Running::start_listening(Command::new(bin("tracker")).arg(&torrent).args([
        "--http",
        "127.0.0.1:0",
        "--interval",
        "5",
    ]));
    let line = tracker.wait_for_line(|line| line.starts_with("http on "), Duration::from_secs(10)).expect("http on");
    let http = line["http on ".len()..].to_owned();

    let peer = |dir: &Path| {
        let mut command = Command::new(bin("peer"));
        command.args(["--no-dht", "--no-lsd"]);
        command.arg("0").arg(&torrent).arg("--dir").arg(dir).args(["--tracker-timeout", "0.5"]);
        command
    };
    let (mut seeder, _) = Running::start_listening(&mut peer(&work.path().join("src")));
    assert!(seeder.wait_for_line(|line| line.starts_with("seeding"), Duration::from_secs(30)).is_some());
    let mut leecher = Running::start(peer(&work.path().join("leech")).arg("--exit-on-complete"));
    let status = leecher.wait(Duration::from_secs(60));
    assert!(status.is_some_and(|status| status.success()), "the leecher did not finish: {}", leecher.stderr());

    let url = format!("http://{http}/");
    let dom = run_bounded(&mut chromium(&url, &["--dump-dom"]), Duration::from_secs(90));
    assert!(dom.contains("lecture.bin"), "no torrent name in the page:\n{dom}");
    // The row of the torrent: 1 seeder, 0 leechers (the leecher finished and left), 1 completed.
    let row = dom.split("<tr class=\"torrent\">").nth(1).and_then(|rest| rest.split("</tr>").next()).unwrap_or("");
    let cells: Vec<&str> =
        row.split("<td").skip(1).filter_map(|cell| cell.split('>').nth(1)?.split('<').next()).collect();
    assert_eq!(cells, ["lecture.bin", "1", "0", "1"], "torrent row {row:?}");
    assert!(dom.contains("joined; given seeders 127.0.0.1:"), "no match line:\n{dom}");
    assert!(dom.contains("finished: now a seeder"), "no finish line:\n{dom}");

    let shot = std::env::temp_dir().join(format!("tracker-dashboard-{}.png", std::process::id()));
    run_bounded(&mut chromium(&url, &[&format!("--screenshot={}", shot.display())]), Duration::from_secs(90));
    assert!(std::fs::metadata(&shot).is_ok_and(|meta| meta.len() > 10_000), "no screenshot at {}", shot.display());
    eprintln!("dashboard screenshot: {}", shot.display());
    seeder.interrupt(Duration::from_secs(10));
}
