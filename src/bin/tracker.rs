//! `tracker`: a BEP 15 UDP tracker.

fn main() -> std::process::ExitCode {
    bittorrent_tools::tracker::main(std::env::args_os())
}
