//! Helpers shared by the end-to-end tests: running our binaries and the reference tools.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::Path;
use std::process::{Command, Output};

/// Path of one of this package's binaries, built by cargo for the integration tests.
pub fn bin(name: &str) -> &'static str {
    match name {
        "mktorrent" => env!("CARGO_BIN_EXE_mktorrent"),
        other => panic!("unknown binary {other}"),
    }
}

/// Runs a command to completion, capturing its output.
pub fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|err| panic!("could not start {command:?}: {err}"))
}

/// Runs a command that must succeed, returning its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Whether a reference tool is usable. Missing tools make the test skip loudly on a developer's machine
/// and fail under CI (CI=true), where .ci/run installs them.
pub fn have_tool(description: &str, probe: &mut Command) -> bool {
    let found = probe.output().map(|output| output.status.success()).unwrap_or(false);
    if !found {
        let ci = std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false" && value != "0");
        assert!(!ci, "{description} is missing, and CI is set: .ci/run must install it");
        eprintln!("\n*** SKIPPING: {description} is not installed (CI is unset). Install it to run this test. ***\n");
    }
    found
}

pub fn have_debian_mktorrent() -> bool {
    have_tool(
        "Debian mktorrent (apt-get install mktorrent)",
        Command::new("sh").args(["-c", "test -x /usr/bin/mktorrent"]),
    )
}

/// Debian's python3-libtorrent imports only under the Debian interpreter.
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

pub fn have_libtorrent() -> bool {
    have_tool(
        "python3-libtorrent (apt-get install python3-libtorrent)",
        Command::new(SYSTEM_PYTHON).args(["-c", "import libtorrent"]),
    )
}

pub fn have_transmission_create() -> bool {
    have_tool(
        "transmission-create (apt-get install transmission-cli)",
        Command::new("transmission-create").arg("--help"),
    )
}

/// Writes `len` bytes of seeded pseudo-random data (xorshift), so every run tests the same content.
pub fn write_pseudo_random(path: &Path, len: usize, seed: u64) {
    let mut state = seed | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent folder");
    }
    std::fs::write(path, bytes).expect("write test data");
}
