//! `tracker`: a BEP 15 UDP tracker.

use std::ffi::OsString;

use bittorrent_tools::{generate, tracker};

fn main() -> std::process::ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // `--generate KIND` first: the program's own parser would demand its required arguments.
    generate::requested::<tracker::Args>(&args).unwrap_or_else(|| tracker::main(args))
}
