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

/// Sends `tracing` lines to stderr, filtered by RUST_LOG (default: info). On a terminal the lines are short (level
/// and message, no timestamp) and are written above the progress bar (see [`show_bar`]) instead of through it;
/// elsewhere (a log file, a pipe) each line has its timestamp.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(BarAwareStderr);
    let _ = if stderr_is_terminal() {
        builder.with_ansi(true).without_time().with_target(false).compact().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// The progress bar log lines must go around, if one is shown.
static BAR: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);

/// From now on, log lines are printed above `bar` (which is redrawn below them) rather than across it.
pub fn show_bar(bar: &indicatif::ProgressBar) {
    *BAR.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bar.clone());
}

/// The bar is gone: log lines go straight to stderr again.
pub fn hide_bar() {
    *BAR.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
}

/// stderr for `tracing`, suspending the progress bar around each line.
struct BarAwareStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BarAwareStderr {
    type Writer = BarAwareLine;

    fn make_writer(&'a self) -> BarAwareLine {
        BarAwareLine(Vec::new())
    }
}

/// One log line, buffered until it is complete so it is written in one piece.
struct BarAwareLine(Vec<u8>);

impl std::io::Write for BarAwareLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for BarAwareLine {
    fn drop(&mut self) {
        let bar = BAR.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let write = || {
            let mut stderr = std::io::stderr().lock();
            let _ = std::io::Write::write_all(&mut stderr, &self.0);
        };
        match bar {
            Some(bar) if !bar.is_finished() => bar.suspend(write),
            _ => write(),
        }
    }
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
