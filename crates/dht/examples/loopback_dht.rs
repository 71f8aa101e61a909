//! A small Mainline DHT on loopback for benches and demos: N nodes of ours on distinct 127.0.0.1 ports,
//! bootstrapped in a star from the first, whose address is what other programs take as their bootstrap node.
//!
//! ```text
//! cargo run --release -p dht --example loopback_dht -- [--nodes 20] [--info-hash HEX] [--timeout 600]
//! ```
//!
//! Lines on stdout: `BOOTSTRAP 127.0.0.1:PORT` (the first node), `READY N nodes ...` once all have bootstrapped,
//! and with `--info-hash`, `ANNOUNCED ...` once some node stores a peer announced for it (then the peers stored,
//! each time that count changes). Exits after `--timeout` seconds, or when killed. Loopback only: the nodes know no
//! address but each other's, and answer whoever asks (per-address limits lifted, as every node shares 127.0.0.1).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use dht::node::RateLimits;
use dht::{Node, NodeConfig};

struct Args {
    nodes: usize,
    info_hash: Option<[u8; 20]>,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { nodes: 20, info_hash: None, timeout: Duration::from_secs(600) };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--nodes" => args.nodes = value()?.parse().map_err(|e| format!("--nodes: {e}"))?,
            "--timeout" => {
                args.timeout = Duration::from_secs_f64(value()?.parse().map_err(|e| format!("--timeout: {e}"))?);
            }
            "--info-hash" => {
                let bytes = hex::decode(value()?).map_err(|e| format!("--info-hash: {e}"))?;
                args.info_hash = Some(bytes.try_into().map_err(|_| "--info-hash: 40 hex digits".to_string())?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.nodes == 0 {
        return Err("--nodes: at least 1".into());
    }
    Ok(args)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("loopback_dht: {error}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let rate_limits = RateLimits { per_ip_per_sec: 1e6, per_ip_burst: 1e6, global_per_sec: 1e6 };
    let base = NodeConfig { restrict_ips: false, rate_limits, ..NodeConfig::default() };
    let localhost = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
    let first = match Node::bind(localhost, base.clone()).await {
        Ok(node) => node,
        Err(error) => {
            eprintln!("loopback_dht: bind: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("BOOTSTRAP {}", first.local_addr());
    let star = vec![SocketAddr::V4(first.local_addr())];
    let mut nodes = vec![first];
    for _ in 1..args.nodes {
        match Node::bind(localhost, NodeConfig { bootstrap: star.clone(), ..base.clone() }).await {
            Ok(node) => {
                node.bootstrap().await;
                nodes.push(node);
            }
            Err(error) => {
                eprintln!("loopback_dht: bind: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let sizes: Vec<usize> = nodes.iter().map(|node| node.nodes().len()).collect();
    println!(
        "READY {} nodes in {:.3} s; table sizes {}..={}",
        nodes.len(),
        started.elapsed().as_secs_f64(),
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0)
    );

    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut last = 0;
    let since = Instant::now();
    while tokio::time::Instant::now() < deadline {
        if let Some(info_hash) = args.info_hash {
            let counts: Vec<usize> = nodes.iter().map(|node| node.stored_peer_count(&info_hash)).collect();
            let stored = counts.iter().copied().max().unwrap_or(0);
            if stored != last {
                let holders = counts.iter().filter(|&&count| count > 0).count();
                let word = if last == 0 { "ANNOUNCED" } else { "STORED" };
                println!(
                    "{word} {stored} peers at {holders} nodes, {:.3} s after READY",
                    since.elapsed().as_secs_f64()
                );
                last = stored;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ExitCode::SUCCESS
}
