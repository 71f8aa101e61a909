//! `peer`: download and seed a torrent over the BitTorrent peer wire protocol.

fn main() -> std::process::ExitCode {
    bittorrent_tools::peer::main(std::env::args_os())
}
