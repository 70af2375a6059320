//! Process CPU and memory accounting.
//!
//! Targets run as child processes (`environment::target`) so their CPU can be read apart from the
//! driver's, from the kernel's own accounting (`/proc/<pid>/stat`: user + system time of every
//! thread of the process).
//!
//! Resolution: `/proc/<pid>/stat` counts in clock ticks (usually 10 ms), so read it over windows of
//! seconds, not milliseconds.

use std::time::Duration;

use anyhow::{Context, anyhow};

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
