//! `mktorrent`: make, show and verify .torrent files.

use std::ffi::OsString;

use bittorrent_tools::{generate, mktorrent};

fn main() -> std::process::ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // `--generate KIND` first: the program's own parser would demand its required arguments.
    generate::requested::<mktorrent::Args>(&args).unwrap_or_else(|| mktorrent::main(args))
}
