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
