//! Issue 26: the example service files in contrib/systemd pass `systemd-analyze verify` (pointed at the binaries
//! just built, since /usr/local/bin holds none here), and the example configs beside them are read by the
//! programs they are for.

mod common;

use std::path::Path;
use std::process::Command;

use common::{bin, run};

fn contrib(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd").join(name)
}

#[test]
fn the_service_files_pass_systemd_analyze_verify() {
    let have = run(Command::new("sh").args(["-c", "command -v systemd-analyze"])).status.success();
    if !have {
        assert!(std::env::var_os("CI").is_none(), "CI=true but systemd-analyze is missing (apt-get install systemd)");
        eprintln!("SKIPPED: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let mut units = Vec::new();
    for (unit, program) in [("peer.service", "peer"), ("tracker.service", "tracker")] {
        let text = std::fs::read_to_string(contrib(unit)).expect("read the unit");
        let installed = format!("/usr/local/bin/{program}");
        assert!(text.contains(&format!("ExecStart={installed} --config /etc/bittorrent-tools/{program}.toml")));
        for option in ["DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes"] {
            assert!(text.lines().any(|line| line == option), "{unit} lacks {option}");
        }
        let path = work.path().join(unit);
        std::fs::write(&path, text.replace(&installed, bin(program))).expect("write the unit");
        units.push(path);
    }
    assert!(std::fs::read_to_string(contrib("peer.service")).expect("read").contains("StateDirectory=bittorrent-peer"));
    // --man=no: the man pages are not installed where the units' Documentation= would look.
    let output = run(Command::new("systemd-analyze").args(["verify", "--man=no"]).args(&units));
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "systemd-analyze verify failed:\n{said}");
    assert!(!said.contains("Unknown key") && !said.contains("Unknown section"), "{said}");
}

#[test]
fn the_example_configs_are_read_by_their_programs() {
    let output = run(Command::new(bin("peer")).arg("--config").arg(contrib("peer.toml")).arg("--print-config"));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.lines().any(|line| line == "port = 6881"), "{printed}");
    assert!(printed.lines().any(|line| line == "dir = \"/var/lib/bittorrent-peer\""), "{printed}");
    let torrent = contrib("debian.torrent");
    assert!(printed.contains(&format!("torrents = [\"{}\"]", torrent.display())), "{printed}");

    let output = run(Command::new(bin("tracker")).arg("--config").arg(contrib("tracker.toml")).arg("--print-config"));
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.lines().any(|line| line == "bind = \"[::]:6969\""), "{printed}");
    assert!(printed.lines().any(|line| line == "interval = 1800"), "{printed}");
}
