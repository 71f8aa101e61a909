//! Issue 24: our session driven through Transmission's RPC by Debian's `transmission-remote` 3.00, unchanged:
//! add a .torrent and a magnet link, list, info, files wanted and unwanted, stop and start, limits, remove with
//! the data; each step checked against the session's state and the bytes on disk. And the RPC's gate over raw
//! HTTP: 409 without the session id, 401 with wrong credentials, 421 for a foreign Host, 413 for a 10 MB body.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::library_session::{Tracker, start_rpc_session, start_seeder};
use common::{assert_same_file, bin, have_tool, make_torrent, write_pseudo_random};

/// `transmission-remote ADDR ARGS...`: its stdout, asserting it succeeded.
fn remote(rpc: SocketAddr, args: &[&str]) -> String {
    let output = Command::new("transmission-remote").arg(rpc.to_string()).args(args).output().expect("run it");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "transmission-remote {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// Polls `remote(args)` every 200 ms until `done` holds for its output, up to `timeout`.
fn remote_until(rpc: SocketAddr, args: &[&str], timeout: Duration, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let output = remote(rpc, args);
        if done(&output) || Instant::now() > deadline {
            return output;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn have_transmission_remote() -> bool {
    have_tool(
        "transmission-remote (apt-get install transmission-cli)",
        Command::new("transmission-remote").arg("--version"),
    )
}

#[test]
fn transmission_remote_adds_lists_selects_stops_starts_limits_and_removes() {
    if !have_transmission_remote() {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let tracker = Tracker::start();
    // A two-file torrent, seeded by our peer.
    let folder = work.path().join("seed").join("album");
    write_pseudo_random(&folder.join("one.bin"), 700_000, 1);
    write_pseudo_random(&folder.join("two.bin"), 300_000, 2);
    let (torrent, _) = make_torrent(&folder, &tracker.announce, 15);
    let (_seeder, _) = start_seeder(&torrent, &work.path().join("seed"), "100M");
    // A second torrent, for a magnet link.
    let single = work.path().join("seed").join("clip.bin");
    write_pseudo_random(&single, 400_000, 3);
    let (single_torrent, single_hash) = make_torrent(&single, &tracker.announce, 15);
    let (_single_seeder, _) = start_seeder(&single_torrent, &work.path().join("seed"), "100M");

    let downloads = work.path().join("downloads");
    let (_session, rpc) = start_rpc_session(&downloads, &[]);
    let added = remote(rpc, &["-a", torrent.to_str().expect("utf-8")]);
    assert!(added.contains("success"), "{added}");

    // -l until done; then the bytes on disk.
    let listed = remote_until(rpc, &["-l"], Duration::from_secs(30), |list| list.contains("100%"));
    assert!(listed.contains("album") && listed.contains("100%"), "{listed}");
    assert!(listed.contains("Seeding") || listed.contains("Idle"), "{listed}");
    assert_same_file(&folder.join("one.bin"), &downloads.join("album/one.bin"));
    assert_same_file(&folder.join("two.bin"), &downloads.join("album/two.bin"));

    // -i: the torrent's details, as transmission-remote prints them.
    let info = remote(rpc, &["-t", "1", "-i"]);
    for line in ["Name: album", "Percent Done: 100%", "Total size: 1.00 MB"] {
        assert!(info.contains(line), "{line:?} not in:\n{info}");
    }
    // transmission-remote says Idle for a seeding torrent that nobody downloads from.
    assert!(info.contains("State: Seeding") || info.contains("State: Idle"), "{info}");
    assert!(info.contains(&format!("Location: {}", downloads.display())), "{info}");

    // Files: both wanted; -G 0 leaves the first out.
    let files = remote(rpc, &["-t", "1", "-if"]);
    assert!(files.contains("album/one.bin") && files.contains("album/two.bin"), "{files}");
    remote(rpc, &["-t", "1", "-G", "0"]);
    let files = remote(rpc, &["-t", "1", "-if"]);
    let one = files.lines().find(|line| line.contains("album/one.bin")).expect("file 0 listed");
    assert!(one.contains(" No "), "file 0 unwanted: {files}");
    remote(rpc, &["-t", "1", "-g", "0"]);
    let files = remote(rpc, &["-t", "1", "-if"]);
    assert!(files.lines().filter(|line| line.contains(".bin")).all(|line| line.contains(" Yes ")), "{files}");

    // Stop, then start: the state follows.
    remote(rpc, &["-t", "1", "-S"]);
    remote_until(rpc, &["-l"], Duration::from_secs(10), |list| list.contains("Stopped"));
    assert!(remote(rpc, &["-l"]).contains("Stopped"));
    remote(rpc, &["-t", "1", "-s"]);
    let started = remote_until(rpc, &["-l"], Duration::from_secs(10), |list| !list.contains("Stopped"));
    assert!(started.contains("Seeding") || started.contains("Idle"), "{started}");

    // Limits: the torrent's own, and the session's.
    remote(rpc, &["-t", "1", "-d", "10"]);
    let info = remote(rpc, &["-t", "1", "-i"]);
    assert!(info.contains("Download Limit: 10 kB/s"), "{info}");
    remote(rpc, &["-u", "50"]);
    let session = remote(rpc, &["-si"]);
    assert!(session.contains("Upload speed limit: 50 kB/s"), "{session}");

    // A magnet link: its metadata from the seeder, then its data.
    let link = format!("magnet:?xt=urn:btih:{}&tr={}", hex::encode(single_hash), tracker.announce);
    let added = remote(rpc, &["-a", &link]);
    assert!(added.contains("success"), "{added}");
    let listed = remote_until(rpc, &["-l"], Duration::from_secs(30), |list| {
        list.lines().any(|line| line.contains("clip.bin") && line.contains("100%"))
    });
    assert!(listed.lines().any(|line| line.contains("clip.bin") && line.contains("100%")), "{listed}");
    assert_same_file(&single, &downloads.join("clip.bin"));

    // Remove the first with its data: gone from the list and from the disk.
    remote(rpc, &["-t", "1", "--remove-and-delete"]);
    let listed = remote_until(rpc, &["-l"], Duration::from_secs(10), |list| !list.contains("album"));
    assert!(!listed.contains("album"), "{listed}");
    assert!(!downloads.join("album").exists(), "the data is deleted");
    assert!(downloads.join("clip.bin").exists(), "the other torrent's data stays");
    // The hash works as an id.
    remote(rpc, &["-t", &hex::encode(single_hash), "-r"]);
    let listed = remote_until(rpc, &["-l"], Duration::from_secs(10), |list| !list.contains("clip.bin"));
    assert!(!listed.contains("clip.bin"), "{listed}");
    assert!(downloads.join("clip.bin").exists(), "removed without its data");
}

/// One raw HTTP/1.1 POST to the RPC: (status, headers, body).
fn post(rpc: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(rpc).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut request =
        format!("POST /transmission/rpc HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send the head");
    // A body the server refuses may be cut off: what it answered is what counts.
    let _ = stream.write_all(body);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

#[test]
fn the_rpc_refuses_what_transmission_daemon_refuses() {
    let work = tempfile::tempdir().expect("tempdir");
    let auth = work.path().join("rpc-auth");
    std::fs::write(&auth, "admin:pa:ss\n").expect("write the credentials");
    let (session, rpc) = start_rpc_session(&work.path().join("d"), &["--rpc-auth", auth.to_str().expect("utf-8")]);
    let good_auth = "Basic YWRtaW46cGE6c3M="; // admin:pa:ss
    let host = ("Host", "127.0.0.1");
    let call = br#"{"method":"session-get","tag":5}"#;

    let (status, head, _) = post(rpc, &[host], call);
    assert_eq!(status, 401, "no credentials: {head}");
    assert!(head.to_ascii_lowercase().contains("www-authenticate: basic"), "{head}");
    let (status, _, _) = post(rpc, &[host, ("Authorization", "Basic YWRtaW46cGFzcw==")], call);
    assert_eq!(status, 401, "wrong password");

    let (status, head, _) = post(rpc, &[host, ("Authorization", good_auth)], call);
    assert_eq!(status, 409, "no session id: {head}");
    let id = head
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("x-transmission-session-id: "))
        .map(|line| &line["x-transmission-session-id: ".len()..])
        .expect("the 409 names the id")
        .trim()
        .to_owned();
    let with_id =
        |host: (&'static str, &'static str)| [host, ("Authorization", good_auth), ("X-Transmission-Session-Id", "")];
    let mut headers = with_id(host);
    headers[2].1 = &id;

    let (status, _, body) = post(rpc, &headers, call);
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!((answer["result"].as_str(), answer["tag"].as_i64()), (Some("success"), Some(5)));
    assert_eq!(answer["arguments"]["rpc-version"], 17);

    let mut foreign = with_id(("Host", "attacker.example:9091"));
    foreign[2].1 = &id;
    assert_eq!(post(rpc, &foreign, call).0, 421, "a Host that is neither an IP nor allowed");

    let big = vec![b' '; 10_000_000];
    assert_eq!(post(rpc, &headers, &big).0, 413, "a 10 MB body");

    let (status, _, body) = post(rpc, &headers, b"{\"method\": ");
    assert_eq!(status, 200);
    assert!(body.contains("not JSON"), "{body}");
    let (_, _, body) = post(rpc, &headers, br#"{"method":"torrent-fly","tag":1}"#);
    assert!(body.contains("method name not recognized"), "{body}");
    let (_, _, body) =
        post(rpc, &headers, br#"{"jsonrpc":"2.0","method":"session_get","params":{"fields":["rpc_version"]},"id":9}"#);
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["result"]["rpc_version"], 17, "JSON-RPC 2.0 in snake_case: {body}");
    assert_eq!(answer["id"], 9);
    assert!(session.stderr().is_empty() || !session.stderr().contains("panicked"), "{}", session.stderr());
}

#[test]
fn an_rpc_reachable_from_other_hosts_needs_credentials() {
    let work = tempfile::tempdir().expect("tempdir");
    let output = Command::new(bin("peer"))
        .args(["--no-dht", "--no-lsd", "0", "--rpc", "0.0.0.0:0", "--dir"])
        .arg(work.path())
        .output()
        .expect("run peer");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--rpc-auth"), "{stderr}");
}

/// Every connection slot held by a socket that never sends a request: each is closed within the RPC's 10 s head
/// timeout, and an honest client that comes then is answered.
#[test]
fn silent_connections_cannot_keep_an_honest_client_out() {
    let work = tempfile::tempdir().expect("tempdir");
    let (_session, rpc) = start_rpc_session(&work.path().join("d"), &[]);
    // More than the RPC serves at once (256).
    let silent: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(rpc).expect("connect")).collect();
    let started = Instant::now();
    let (status, _, _) = post(rpc, &[("Host", "127.0.0.1")], br#"{"method":"session-get"}"#);
    assert_eq!(status, 409, "the honest client was answered (a 409 asks for the session id)");
    assert!(started.elapsed() < Duration::from_secs(25), "answered only after {:?}", started.elapsed());
    drop(silent);
}
