//! Target child processes, CPU pinning and CPU accounting.
//!
//! Targets run as child processes so their CPU can be read apart from the driver's, from the kernel's
//! own accounting (`/proc/<pid>/stat`: user + system time of every thread of the process). On a
//! machine with two or more CPUs the target gets one CPU to itself and the driver the rest
//! ([`cpu_plan`]), so the two do not steal each other's cycles and per-request CPU stays comparable
//! across strategies.
//!
//! Resolution: `/proc/<pid>/stat` counts in clock ticks (usually 10 ms), so read it over windows of
//! seconds, not milliseconds.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

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
        let mut cmd = Command::new(exe);
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

/// Kernel clock ticks per second (the unit of `/proc/<pid>/stat` times).
fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// utime + stime of process `pid`, from `/proc/<pid>/stat`.
pub fn proc_cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let ticks = parse_stat_cpu_ticks(&text).ok_or_else(|| anyhow!("{path}: unexpected format"))?;
    let hz = clock_ticks_per_sec();
    Ok(Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz))
}

/// utime (field 14) + stime (field 15) of a `/proc/<pid>/stat` line, in clock ticks. The command
/// name (field 2) may contain spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // `rest` starts at field 3 (state): utime is field 14, the 12th from here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The driver's own user + system CPU so far (`getrusage(RUSAGE_SELF)`: all threads, not children).
pub fn self_cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    timeval(ru.ru_utime) + timeval(ru.ru_stime)
}

fn timeval(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u64::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

fn cpu_set(cpus: &[usize]) -> anyhow::Result<libc::cpu_set_t> {
    if cpus.is_empty() {
        bail!("no CPUs to pin to");
    }
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    for &cpu in cpus {
        if cpu >= max {
            bail!("CPU {cpu} is beyond the largest CPU number this build can pin ({})", max - 1);
        }
        // SAFETY: `cpu` was checked to be within the set.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    Ok(set)
}

/// Pin the whole current process to `cpus`: every thread that exists now (each task in
/// `/proc/self/task`), and so every thread started later, which inherits its creator's mask.
/// (`sched_setaffinity(0, ...)` alone would pin only the calling thread.)
pub fn pin_current_process(cpus: &[usize]) -> anyhow::Result<()> {
    let set = cpu_set(cpus)?;
    let mut tids: Vec<libc::pid_t> = std::fs::read_dir("/proc/self/task")
        .map(|dir| dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    if tids.is_empty() {
        tids.push(0);
    }
    for tid in tids {
        // SAFETY: plain syscall on a set we own.
        let rc = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            // A thread that ended since the directory was read is not an error.
            if err.raw_os_error() != Some(libc::ESRCH) {
                return Err(err).with_context(|| format!("pinning thread {tid} to CPUs {cpus:?}"));
            }
        }
    }
    Ok(())
}

/// The CPUs this process may run on (`sched_getaffinity`), ascending.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the zeroed set we own.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: every index is within the set.
    (0..8 * std::mem::size_of::<libc::cpu_set_t>()).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// Where the target and the driver run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuPlan {
    /// The CPU the target child is pinned to; `None`: not pinned (fewer than 2 CPUs available).
    pub target_cpu: Option<usize>,
    /// The CPUs the driver pins itself to ([`pin_current_process`]); empty: not pinned.
    pub driver_cpus: Vec<usize>,
    /// In plain words, for the report's `machine.pinning`.
    pub description: String,
}

/// With two or more CPUs available: the target on the last one, the driver on the rest. With one
/// (or when the affinity mask cannot be read): no pinning, and the description says they share.
pub fn cpu_plan() -> CpuPlan {
    plan_for(&allowed_cpus())
}

fn plan_for(cpus: &[usize]) -> CpuPlan {
    match cpus.split_last() {
        Some((&last, rest)) if !rest.is_empty() => CpuPlan {
            target_cpu: Some(last),
            driver_cpus: rest.to_vec(),
            description: format!(
                "target pinned to CPU {last}, driver to CPU{} {}",
                if rest.len() == 1 { "" } else { "s" },
                rest.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
            ),
        },
        _ => CpuPlan {
            target_cpu: None,
            driver_cpus: Vec::new(),
            description: format!(
                "no pinning: {} CPU available, so target and driver share it (figures include contention)",
                cpus.len().max(1)
            ),
        },
    }
}

/// The driver's peak resident set size (`VmHWM` in `/proc/self/status`), bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&status, "VmHWM:").map(|kib| kib * 1024)
}

/// A `Key:   1234 kB` line of a `/proc/*/status`-like file, in KiB.
pub(crate) fn parse_status_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_ascii_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() {
        let stat = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 99 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(325));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn own_stat_parses() {
        let t = proc_cpu_time(std::process::id()).unwrap();
        assert!(t < Duration::from_secs(3600));
    }

    #[test]
    fn plans() {
        let p = plan_for(&[0, 1]);
        assert_eq!(p.target_cpu, Some(1));
        assert_eq!(p.driver_cpus, vec![0]);
        assert_eq!(p.description, "target pinned to CPU 1, driver to CPU 0");
        let p = plan_for(&[0, 1, 2, 3]);
        assert_eq!(p.target_cpu, Some(3));
        assert!(p.description.ends_with("CPUs 0,1,2"), "{}", p.description);
        let p = plan_for(&[0]);
        assert_eq!(p.target_cpu, None);
        assert!(p.driver_cpus.is_empty());
        assert!(p.description.starts_with("no pinning"));
        assert!(!allowed_cpus().is_empty());
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_kib("Name:\tx\nVmHWM:\t   2048 kB\n", "VmHWM:"), Some(2048));
        assert!(peak_rss_bytes().unwrap() > 0);
    }

    #[test]
    fn self_cpu_grows() {
        let before = self_cpu_time();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(self_cpu_time() > before);
    }
}
