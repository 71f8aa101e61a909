//! Child processes for tests: started with piped output, stopped by their own PID when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running program of ours. Its stdout lines arrive on a channel; its stderr is collected.
pub struct Running {
    child: Child,
    stdout: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// Disconnected once the stderr reader has taken everything up to the end of the pipe.
    stderr_done: Receiver<()>,
}

impl Running {
    /// Starts `command` and waits (up to 20 s) for its `listening on ADDR` line.
    pub fn start_listening(command: &mut Command) -> (Running, SocketAddr) {
        let mut running = Running::start(command);
        let line = running
            .wait_for_line(|line| line.starts_with("listening on "), Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{command:?} never printed `listening on`; stderr:\n{}", running.stderr()));
        let address = line["listening on ".len()..].trim().parse().expect("an address after `listening on`");
        (running, address)
    }

    pub fn start(command: &mut Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {command:?}: {err}"));
        let (sender, stdout) = channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let collected = stderr.clone();
        let err = child.stderr.take().expect("piped stderr");
        let (finished, stderr_done) = channel::<()>();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut text = collected.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
            drop(finished);
        });
        Running { child, stdout, stderr, stderr_done }
    }

    /// The next stdout line matching `wanted`, skipping others, or None after `timeout`.
    pub fn wait_for_line(&mut self, wanted: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.stdout.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Some(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// The stdout lines not yet read, up to the program's exit (or `timeout`).
    pub fn rest_of_stdout(&mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stdout.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        lines
    }

    /// Everything the program wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Polls stderr until it contains `text`, for up to `timeout`.
    pub fn wait_for_stderr(&self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stderr().contains(text)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT (Ctrl-C) to this child and waits up to `timeout` for it to exit.
    pub fn interrupt(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let status = Command::new("kill").args(["-INT", &self.pid().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -INT failed");
        self.wait(timeout)
    }

    /// Waits up to `timeout` for the child to exit on its own; once it has, [`Running::stderr`] holds all it wrote
    /// (its last lines can still be in the pipe when it exits, so the reader is given up to 2 s to take them).
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let _ = self.stderr_done.recv_timeout(Duration::from_secs(2));
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}
