//! `demo`: a whole swarm (our tracker, one seeder, several leechers) on loopback, every copy checked.

fn main() -> std::process::ExitCode {
    bittorrent_tools::demo::main(std::env::args_os())
}
