//! `mktorrent`: make, show and verify .torrent files.

fn main() -> std::process::ExitCode {
    bittorrent_tools::mktorrent::main(std::env::args_os())
}
