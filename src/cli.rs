//! What every program shares: turning a result into an exit code and a message on stderr.

use std::process::ExitCode;

/// Prints `program: error: ...` with the whole context chain and returns exit code 1 on error.
pub fn finish(program: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{program}: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// True when stderr is a terminal a person watches (progress bars go there, and only there).
pub fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Sends `tracing` lines to stderr, filtered by RUST_LOG (default: info).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(stderr_is_terminal())
        .try_init();
}

/// A flag set by the first Ctrl-C or SIGTERM, so a program can shut down cleanly.
pub fn shutdown_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use anyhow::Context;
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, flag.clone()).context("installing the signal handler")?;
    }
    Ok(flag)
}

/// Prints the `listening on ADDR` line that scripts and tests wait for, and flushes it at once.
pub fn announce_listening(address: std::net::SocketAddr) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening on {address}");
    let _ = stdout.flush();
}
