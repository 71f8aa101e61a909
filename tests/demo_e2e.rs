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
