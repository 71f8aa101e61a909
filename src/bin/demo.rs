//! `demo`: a whole swarm (our tracker, one seeder, several leechers) on loopback, every copy checked.

use std::ffi::OsString;

use bittorrent_tools::{demo, generate};

fn main() -> std::process::ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // `--generate KIND` first: the program's own parser would demand its required arguments.
    generate::requested::<demo::Args>(&args).unwrap_or_else(|| demo::main(args))
}
