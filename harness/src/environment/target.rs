//! Target servers as child processes (`authbench target ...`): started pinned to a CPU, announced
//! by their `listening on http://IP:PORT` line (the target contract), stopped with SIGTERM and,
//! failing that, SIGKILL. Their CPU is measured by `collect::process` from the pid.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use super::cpu::cpu_set;
use crate::collect::process::proc_cpu_time;

/// How long a target may take to print its `listening on` line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long [`TargetProcess::stop`] waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a child's stderr is kept for error messages (the tail).
const STDERR_TAIL_BYTES: usize = 16 * 1024;
/// The announcement a target prints first on stdout (target contract).
const LISTENING_PREFIX: &str = "listening on ";

/// A target server running as a child process. Killed (SIGKILL) if dropped without [`stop`].
///
/// [`stop`]: TargetProcess::stop
pub struct TargetProcess {
    /// `http://IP:PORT` as the target announced it.
    pub base_url: String,
    /// The child's pid: what `/proc/<pid>/stat` is read from.
    pub pid: u32,
    /// Held so the child is reaped, and killed on drop (`kill_on_drop`).
    child: Child,
    /// The last [`STDERR_TAIL_BYTES`] of the child's stderr, for error messages and logs.
    stderr_tail: Arc<Mutex<Vec<u8>>>,
}

impl std::fmt::Debug for TargetProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetProcess").field("base_url", &self.base_url).field("pid", &self.pid).finish()
    }
}

impl TargetProcess {
    /// Spawn `exe args`, pinned to `cpu` when given, and wait (at most [`STARTUP_TIMEOUT`]) for its
    /// `listening on http://IP:PORT` line. Stderr is captured (its tail is kept and each line logged
    /// at debug level); an early exit is an error carrying that stderr.
    pub async fn spawn(exe: &Path, args: &[String], cpu: Option<usize>) -> anyhow::Result<TargetProcess> {
        Self::spawn_with_env(exe, args, &[], cpu).await
    }

    /// [`TargetProcess::spawn`] with extra environment variables (a shared secret, kept out of the
    /// command line that error messages show).
    pub async fn spawn_with_env(
        exe: &Path,
        args: &[String],
        envs: &[(String, String)],
        cpu: Option<usize>,
    ) -> anyhow::Result<TargetProcess> {
        let mut cmd = Command::new(exe);
        cmd.envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        if let Some(cpu) = cpu {
            let set = cpu_set(&[cpu])?;
            // SAFETY: the closure runs in the forked child before exec and only makes one
            // async-signal-safe system call on a value prepared before the fork.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let shown = format!("{} {}", exe.display(), args.join(" "));
        let mut child = cmd.spawn().with_context(|| format!("starting `{shown}`"))?;
        let pid = child.id().ok_or_else(|| anyhow!("`{shown}` exited at once"))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("child stdout was not piped"))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("child stderr was not piped"))?;

        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let stderr_done = tokio::spawn(collect_stderr(stderr, Arc::clone(&stderr_tail), pid));

        let mut lines = BufReader::new(stdout);
        let announced = tokio::time::timeout(STARTUP_TIMEOUT, read_listening_line(&mut lines)).await;
        let base_url = match announced {
            Ok(Ok(Some(url))) => url,
            Ok(Ok(None)) | Ok(Err(_)) => {
                // stdout closed: the child is exiting. Give it a moment to finish writing stderr.
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                let _ = tokio::time::timeout(Duration::from_secs(1), stderr_done).await;
                let status = match status {
                    Ok(Ok(s)) => s.to_string(),
                    _ => "still running with stdout closed".to_owned(),
                };
                bail!("`{shown}` exited before listening ({status}); stderr:\n{}", tail_text(&stderr_tail));
            }
            Err(_) => {
                let _ = child.start_kill();
                bail!(
                    "`{shown}` did not print `listening on http://...` within {} s; stderr:\n{}",
                    STARTUP_TIMEOUT.as_secs(),
                    tail_text(&stderr_tail)
                );
            }
        };
        // Keep draining stdout so a chatty child never blocks on a full pipe.
        tokio::spawn(drain(lines));
        tracing::debug!(pid, %base_url, ?cpu, "target started");
        Ok(TargetProcess { base_url, pid, child, stderr_tail })
    }

    /// User + system CPU the child has used so far, all threads (`/proc/<pid>/stat` utime + stime).
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        proc_cpu_time(self.pid)
    }

    /// The last few KiB the child wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        tail_text(&self.stderr_tail)
    }

    /// SIGTERM, wait at most [`STOP_TIMEOUT`] for a clean exit, then SIGKILL.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Ok(Some(_)) = self.child.try_wait() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.pid).context("pid out of range")?;
        // SAFETY: plain syscall; the child is ours and not yet reaped (try_wait said so), so the
        // pid cannot have been reused.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status.context("waiting for the target to exit")?;
                tracing::debug!(pid, %status, "target stopped");
                Ok(())
            }
            Err(_) => {
                tracing::warn!(pid, "target ignored SIGTERM for {} s; killing it", STOP_TIMEOUT.as_secs());
                self.child.kill().await.context("killing the target")
            }
        }
    }
}

/// Read stdout lines until the `listening on http://...` announcement; `None` at end of file.
async fn read_listening_line(reader: &mut BufReader<ChildStdout>) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if let Some(url) = line.trim().strip_prefix(LISTENING_PREFIX) {
            return Ok(Some(url.trim_end_matches('/').to_owned()));
        }
        tracing::debug!(line = line.trim_end(), "target stdout before the announcement");
    }
}

async fn drain(mut reader: BufReader<ChildStdout>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

async fn collect_stderr(stderr: tokio::process::ChildStderr, tail: Arc<Mutex<Vec<u8>>>, pid: u32) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(pid, "target stderr: {line}");
        if let Ok(mut t) = tail.lock() {
            t.extend_from_slice(line.as_bytes());
            t.push(b'\n');
            if t.len() > STDERR_TAIL_BYTES {
                let cut = t.len() - STDERR_TAIL_BYTES;
                t.drain(..cut);
            }
        }
    }
}

fn tail_text(tail: &Mutex<Vec<u8>>) -> String {
    match tail.lock() {
        Ok(t) if !t.is_empty() => String::from_utf8_lossy(&t).into_owned(),
        _ => "(empty)".to_owned(),
    }
}
