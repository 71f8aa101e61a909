//! The programs as a user installs them: copied out of the build tree (as `cargo install` does), the demo still
//! runs from any folder; and what `--generate KIND` prints loads in bash, zsh and fish and renders with `man`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, have_tool, in_ci, run, run_ok, running_as_root};

/// Every program, as `--generate` and `cargo install` know them.
const PROGRAMS: [&str; 4] = ["mktorrent", "tracker", "peer", "demo"];

/// Path of one of our binaries in the build tree (`common::bin` has no `demo`).
fn built(name: &str) -> &'static str {
    match name {
        "demo" => env!("CARGO_BIN_EXE_demo"),
        other => bin(other),
    }
}

/// A flag each program's man page and completions must offer, besides `--help` and `--generate`.
fn known_flag(name: &str) -> &'static str {
    match name {
        "mktorrent" => "--announce",
        "tracker" | "peer" => "--bind",
        "demo" => "--picture",
        other => panic!("unknown program {other}"),
    }
}

/// Runs `PROGRAM --generate KIND`, which must succeed; returns what it printed.
fn generate(name: &str, kind: &str) -> String {
    let output = run_ok(Command::new(built(name)).args(["--generate", kind]));
    assert!(!output.is_empty(), "{name} --generate {kind} printed nothing");
    output
}

/// Writes `PROGRAM --generate KIND` into `dir/file` and returns its path.
fn generate_into(dir: &Path, name: &str, kind: &str, file: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, generate(name, kind)).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    path
}

/// Whether this test can hide folders from a child with a private mount namespace (root and a working
/// `unshare --mount`). Otherwise it skips loudly, or fails under CI.
fn can_hide_folders() -> bool {
    let why = if !running_as_root() {
        Some("the tests do not run as root")
    } else if !Command::new("unshare").args(["--mount", "true"]).status().is_ok_and(|status| status.success()) {
        Some("`unshare --mount true` fails (util-linux missing, or no CAP_SYS_ADMIN in this container)")
    } else {
        None
    };
    if let Some(why) = why {
        assert!(!in_ci(), "{why}, and CI is set: the installed-demo test must run there");
        eprintln!(
            "\n*** SKIPPING the installed-demo test: {why} (CI is unset). Run the tests as root to run it. ***\n"
        );
        return false;
    }
    true
}

#[test]
fn an_installed_demo_runs_from_any_folder_without_the_source_tree() {
    if !can_hide_folders() {
        return;
    }
    // `cargo install` puts the binaries in ROOT/bin and nothing else.
    let root = tempfile::tempdir().expect("tempdir");
    let installed = root.path().join("bin");
    std::fs::create_dir(&installed).expect("mkdir bin");
    // Copied by `cp`, not std::fs::copy: a file this process held open for writing could be inherited by a child
    // another test thread forks meanwhile, and executing the copy would then fail with ETXTBSY.
    for name in PROGRAMS {
        run_ok(Command::new("cp").arg(built(name)).arg(installed.join(name)));
    }
    let demo = installed.join("demo");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let picture = elsewhere.path().join("run.svg");

    let help = run_ok(Command::new(&demo).arg("--help"));
    assert!(help.contains("built-in sample spiderman.txt") && !help.contains("this repository"), "{help}");

    // In a private mount namespace, empty tmpfs hide the source tree's sample and the build tree's binaries, so
    // the demo can only use what is inside its own executable. One leecher: no upload cap, a short run; `timeout`
    // bounds it should the swarm hang.
    let sample_data = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data");
    let build_tree = Path::new(built("demo")).parent().expect("the build folder");
    let script = r#"
        for dir in "$1" "$2"; do mount -t tmpfs hidden "$dir" || exit 97; done
        test ! -e "$1/spiderman.txt" || { echo "the sample is still visible" >&2; exit 98; }
        exec timeout 120 "$3" 1 --picture "$4"
    "#;
    let output = run(Command::new("unshare")
        .args(["--mount", "sh", "-c", script, "sh"])
        .arg(&sample_data)
        .arg(build_tree)
        .arg(&demo)
        .arg(&picture)
        .current_dir(elsewhere.path()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the installed demo failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("sharing the built-in sample spiderman.txt (4.20 KiB)"), "{stdout}");
    assert!(stdout.contains("every copy verified: 1 of 1 identical to the original"), "{stdout}\nstderr:\n{stderr}");
    assert!(stdout.lines().any(|line| line.starts_with("leecher 1") && line.ends_with("identical")), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Nothing leaked out of the namespace: the real sample is still there.
    assert!(sample_data.join("spiderman.txt").is_file(), "the source tree's sample is gone");
}

#[test]
fn every_bash_completion_loads_and_completes_flags_and_kinds() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Loads the script, shows how NAME is completed, then calls its function as bash would for `NAME --gen<TAB>`
    // and `NAME --generate <TAB>`.
    let script = r#"
        source "$1" || exit 1
        spec=$(complete -p "$2") || exit 1
        echo "spec $spec"
        function=${spec#* -F }; function=${function%% *}
        COMP_WORDS=("$2" --gen); COMP_CWORD=1; COMPREPLY=()
        "$function" "$2" --gen "$2"; printf 'flag %s\n' "${COMPREPLY[@]}"
        COMP_WORDS=("$2" --); COMP_CWORD=1; COMPREPLY=()
        "$function" "$2" -- "$2"; printf 'flag %s\n' "${COMPREPLY[@]}"
        COMP_WORDS=("$2" --generate ""); COMP_CWORD=2; COMPREPLY=()
        "$function" "$2" "" --generate; printf 'kind %s\n' "${COMPREPLY[@]}"
    "#;
    for name in PROGRAMS {
        let file = generate_into(dir.path(), name, "complete-bash", &format!("{name}.bash"));
        let shown =
            run_ok(Command::new("bash").args(["--norc", "--noprofile", "-c", script, "bash"]).arg(&file).arg(name));
        let lines: Vec<&str> = shown.lines().collect();
        assert!(
            lines.first().is_some_and(|spec| spec.starts_with("spec complete ") && spec.ends_with(&format!(" {name}"))),
            "{name}: `complete -p {name}` does not name it:\n{shown}"
        );
        for expected in ["flag --generate", "flag --help", &format!("flag {}", known_flag(name))] {
            assert!(lines.contains(&expected), "{name}: no `{expected}`:\n{shown}");
        }
        for kind in ["man", "complete-bash", "complete-zsh", "complete-fish"] {
            assert!(lines.contains(&format!("kind {kind}").as_str()), "{name} --generate <TAB> lacks {kind}:\n{shown}");
        }
    }
}

#[test]
fn every_zsh_completion_loads_through_compinit() {
    if !have_tool("zsh (apt-get install zsh)", Command::new("zsh").arg("--version")) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // As a user installs it: `_NAME` in a folder on fpath, found by compinit (-D: no dump file written; -u: the
    // temporary folder's owner is not checked); +X loads the function, so a syntax error fails here.
    let script = r#"
        fpath=("$1" $fpath)
        autoload -Uz compinit && compinit -u -D || exit 1
        print -r -- "comps ${_comps[$2]}"
        autoload -Uz +X "_$2" || exit 1
        whence -w "_$2"
    "#;
    for name in PROGRAMS {
        let file = generate_into(dir.path(), name, "complete-zsh", &format!("_{name}"));
        let text = std::fs::read_to_string(&file).expect("read back");
        assert!(text.starts_with(&format!("#compdef {name}\n")), "{name}: {text}");
        run_ok(Command::new("zsh").arg("-n").arg(&file));
        let shown = run_ok(Command::new("zsh").args(["-f", "-c", script, "zsh"]).arg(dir.path()).arg(name));
        assert!(
            shown.lines().any(|line| line == format!("comps _{name}")),
            "{name}: compinit did not register it:\n{shown}"
        );
        assert!(shown.lines().any(|line| line == format!("_{name}: function")), "{name}: not loaded:\n{shown}");
        for flag in ["--generate", "--help", known_flag(name)] {
            assert!(text.contains(flag), "{name}: _{name} lacks {flag}");
        }
    }
}

#[test]
fn every_fish_completion_loads_and_completes_flags_and_kinds() {
    if !have_tool("fish (apt-get install fish)", Command::new("fish").arg("--version")) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // `complete -C LINE` prints what fish offers for LINE, one `candidate<TAB>description` a line.
    let script = r#"
        source $argv[1]; or exit 1
        for candidate in (complete -C "$argv[2] --"); echo "flag $candidate"; end
        for candidate in (complete -C "$argv[2] --generate "); echo "kind $candidate"; end
    "#;
    for name in PROGRAMS {
        let file = generate_into(dir.path(), name, "complete-fish", &format!("{name}.fish"));
        // Its own XDG folders: fish writes its universal variables there, and must not touch the user's.
        let shown = run_ok(
            Command::new("fish")
                .args(["--no-config", "-c", script])
                .arg(&file)
                .arg(name)
                .env("XDG_CONFIG_HOME", dir.path().join("config"))
                .env("XDG_DATA_HOME", dir.path().join("data")),
        );
        let offered = |prefix: &str, word: &str| {
            shown
                .lines()
                .any(|line| line == format!("{prefix} {word}") || line.starts_with(&format!("{prefix} {word}\t")))
        };
        for flag in ["--generate", "--help", known_flag(name)] {
            assert!(offered("flag", flag), "{name}: fish does not offer {flag}:\n{shown}");
        }
        for kind in ["man", "complete-bash", "complete-zsh", "complete-fish"] {
            assert!(offered("kind", kind), "{name} --generate <TAB> lacks {kind} in fish:\n{shown}");
        }
    }
}

#[test]
fn every_man_page_renders_with_its_name_and_flags() {
    if !have_tool("man-db (apt-get install man-db)", Command::new("man").arg("--version")) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for name in PROGRAMS {
        let page = generate_into(dir.path(), name, "man", &format!("{name}.1"));
        // The C locale keeps roff's `\-` a plain '-'; a wide page keeps flags from being hyphenated across lines.
        let output = run(Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("LC_ALL", "C")
            .env("MANWIDTH", "200")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat"));
        let text = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "man -l {name}.1 failed with {}:\n{stderr}", output.status);
        assert!(stderr.trim().is_empty(), "man -l {name}.1 warned:\n{stderr}");
        assert!(text.trim_start().starts_with(&format!("{name}(1)")), "{name}: no `{name}(1)` heading:\n{text}");
        assert!(text.contains("NAME") && text.contains("SYNOPSIS") && text.contains("OPTIONS"), "{name}:\n{text}");
        for flag in ["--help", "--version", "--generate", known_flag(name)] {
            assert!(text.contains(flag), "{name}: the rendered page lacks {flag}:\n{text}");
        }
    }
}

#[test]
fn an_unknown_or_missing_kind_is_a_usage_error_that_lists_the_kinds() {
    for name in PROGRAMS {
        for args in [&["--generate", "pdf"][..], &["--generate=pdf"], &["--generate"], &["--generate", "man", "extra"]]
        {
            let output = run(Command::new(built(name)).args(args));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{name} {args:?}: {stderr}");
            assert!(output.stdout.is_empty(), "{name} {args:?} printed on stdout");
            assert!(stderr.starts_with(&format!("{name}: error: ")), "{name} {args:?}: {stderr}");
            assert!(stderr.contains("man, complete-bash, complete-zsh, complete-fish"), "{name} {args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
        let unknown = run(Command::new(built(name)).args(["--generate", "pdf"]));
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown --generate kind 'pdf'"));
    }
}
