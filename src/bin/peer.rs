//! `peer`: download and seed a torrent over the BitTorrent peer wire protocol.

use std::ffi::OsString;

use bittorrent_tools::{generate, peer};

fn main() -> std::process::ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // `--generate KIND` first: the program's own parser would demand its required arguments.
    generate::requested::<peer::Args>(&args).unwrap_or_else(|| peer::main(args))
}
