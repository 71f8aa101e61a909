//! End-to-end: the `demo` program runs a whole swarm (tracker, seeder, leechers) on a generated file, checks every
//! copy against the original, and cleans up after itself.

mod common;

use std::process::Command;

use common::{run, write_pseudo_random};

fn demo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_demo"))
}

#[test]
fn demo_shares_a_file_with_two_leechers_and_verifies_every_copy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("shared.bin");
    // 40 pieces of 32 KiB (the last one shorter), so the leechers have pieces to trade.
    write_pseudo_random(&data, 40 * 32 * 1024 - 123, 7);

    let output = run(demo().arg("2").arg(&data));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    assert!(
        stdout.contains("every copy verified: 2 of 2 identical to the original"),
        "no verification line\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for leecher in ["leecher 1", "leecher 2"] {
        assert!(
            stdout.lines().any(|line| line.starts_with(leecher) && line.ends_with("identical")),
            "no summary row saying {leecher}'s copy is identical\nstdout:\n{stdout}"
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The temporary folder (torrent and copies) is gone; the original is untouched.
    let work = stdout
        .lines()
        .find_map(|line| line.split("removing ").nth(1))
        .unwrap_or_else(|| panic!("no `removing DIR` in\n{stdout}"));
    assert!(!std::path::Path::new(work.trim()).exists(), "{work} was left behind");
    let expected = dir.path().join("expected.bin");
    write_pseudo_random(&expected, 40 * 32 * 1024 - 123, 7);
    assert!(std::fs::read(&data).expect("original") == std::fs::read(&expected).expect("expected"));
}

#[test]
fn demo_reports_a_missing_file_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = run(demo().arg("2").arg(dir.path().join("nothing-here")));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("demo: error:") && stderr.contains("nothing-here"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The cells of a line of the demo's tables: runs of text separated by two spaces or more.
fn cells(line: &str) -> Vec<String> {
    line.split("  ").map(str::trim).filter(|cell| !cell.is_empty()).map(str::to_owned).collect()
}

#[test]
fn the_default_demo_shows_matches_trading_a_matrix_and_a_picture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let picture = dir.path().join("run.svg");
    let output = run(demo().arg("--picture").arg(&picture));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("every copy verified: 3 of 3 identical to the original"), "{stdout}");
    // The tracker's decisions, in the peers' names.
    assert!(stdout.contains("tracker: seeder joined as a seeder"), "{stdout}");
    assert!(
        stdout.lines().any(|line| line.starts_with("tracker: leecher") && line.contains("given seeders: seeder")),
        "no match line\n{stdout}"
    );
    // Per-peer progress lines (not a terminal: one a second).
    assert!(stdout.lines().any(|line| line.contains("| leecher 1 ") && line.contains('%')), "{stdout}");
    // Each leecher's piece map, and who is sending to it.
    assert!(
        stdout
            .lines()
            .any(|line| line.trim_start().starts_with("leecher 2 [") && line.contains('█') && line.contains("from ")),
        "no piece map\n{stdout}"
    );
    // The matrix: each leecher's row adds up to what it downloaded, and leechers sent each other pieces.
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines.iter().position(|line| line.starts_with("who sent how much to whom")).expect("a matrix");
    let header = cells(lines[start + 1]);
    assert_eq!(header, ["seeder", "leecher 1", "leecher 2", "leecher 3", "total"]);
    let mut traded = false;
    for row in &lines[start + 2..start + 5] {
        let row = cells(row);
        let label = row[0].clone();
        let summary = lines.iter().find(|line| line.starts_with(&format!("{label} "))).expect("a summary row");
        assert_eq!(row[5], cells(summary)[1], "{label}: the row's total is not what it downloaded");
        traded |= row[2..5].iter().any(|cell| cell != "-" && cell != "0 B");
    }
    assert!(traded, "the leechers did not trade:\n{stdout}");

    // The picture: one row per peer, one mark per verified piece of each leecher, read by Python's XML parser.
    assert!(stdout.contains(&format!("picture of the run: {}", picture.display())), "{stdout}");
    assert!(std::fs::read_to_string(&picture).is_ok_and(|svg| svg.starts_with("<svg")), "no SVG written");
    if !common::have_tool("python3 (to parse the picture)", Command::new("python3").arg("--version")) {
        return;
    }
    let check = "import sys, xml.etree.ElementTree as ET\n\
                 ns = {'s': 'http://www.w3.org/2000/svg'}\n\
                 root = ET.parse(sys.argv[1]).getroot()\n\
                 for row in root.findall('s:g[@data-peer]', ns):\n    \
                 print(row.get('data-peer'), len([r for r in row.findall('s:rect', ns) if r.get('class') == 'piece']))\n";
    let rows = common::run_ok(Command::new("python3").args(["-c", check]).arg(&picture));
    let pieces = stdout
        .split(" pieces of ")
        .next()
        .and_then(|head| head.rsplit(", ").next())
        .and_then(|count| count.parse::<u32>().ok())
        .expect("the piece count on the mktorrent line");
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        [
            "seeder 0".to_owned(),
            format!("leecher 1 {pieces}"),
            format!("leecher 2 {pieces}"),
            format!("leecher 3 {pieces}")
        ],
        "{rows}"
    );

    // Rendered in a real browser: a PNG that is not blank.
    if !common::have_tool("chromium (headless browser)", Command::new("chromium").arg("--version")) {
        return;
    }
    let png = dir.path().join("run.png");
    let url = format!("file://{}", picture.display());
    let rendered = run(Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,420"])
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url));
    assert!(rendered.status.success(), "{}", String::from_utf8_lossy(&rendered.stderr));
    let colours = "import sys, zlib, struct\n\
                   data = open(sys.argv[1], 'rb').read()\n\
                   assert data[:8] == b'\\x89PNG\\r\\n\\x1a\\n'\n\
                   at, idat = 8, b''\n\
                   while at < len(data):\n    \
                   n = struct.unpack('>I', data[at:at+4])[0]\n    \
                   kind = data[at+4:at+8]\n    \
                   if kind == b'IDAT': idat += data[at+8:at+8+n]\n    \
                   at += 12 + n\n\
                   print(len(set(zlib.decompress(idat))))\n";
    let distinct: usize =
        common::run_ok(Command::new("python3").args(["-c", colours]).arg(&png)).trim().parse().expect("a count");
    assert!(distinct > 16, "the rendered picture looks blank ({distinct} distinct byte values)");
}
