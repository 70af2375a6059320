//! What a run ran on ([`machine`]) and with ([`tool_info`]), for the report's header: numbers are
//! only comparable between runs on like machines and like builds.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::results::{Machine, ToolInfo};

/// The machine: online CPUs, CPU model, kernel release, total memory. `pinning` is the
/// [`CpuPlan`](super::CpuPlan) description (how those CPUs were split between target and driver).
///
/// CPUs are counted from the system, not from this process's affinity: the driver has usually
/// pinned itself by the time this runs, and the report must describe the machine.
pub fn machine(pinning: &str) -> Machine {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let cpus = if online > 0 { online as usize } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
    Machine {
        cpus,
        cpu_model: std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| cpu_model(&t)),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        memory_bytes: std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| super::process::parse_status_kib(&t, "MemTotal:"))
            .map(|kib| kib * 1024),
        pinning: pinning.to_owned(),
    }
}

/// The first `model name` of `/proc/cpuinfo` (x86), else its `Model`/`CPU part` style fallbacks.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "cpu model", "Hardware"].iter().find_map(|key| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == *key && !v.trim().is_empty()).then(|| v.trim().to_owned())
        })
    })
}

/// The tool: name and version of this build, the git commit of the checkout it runs from, the
/// `rustc` on `PATH` and the `redis-server` version.
///
/// `git_sha` is read at run time (`git rev-parse HEAD`, first in the directory of the running
/// executable, then in the source directory this crate was built from), with `-dirty` appended when
/// the work tree has uncommitted changes; `rustc` is the one on `PATH` now, which is normally the one
/// that built this binary. Both are `None` when the command is missing.
pub fn tool_info() -> ToolInfo {
    ToolInfo {
        name: "authbench".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        git_sha: git_sha(),
        rustc: command_line("rustc", &["-V"], None),
        redis_server: super::redis::redis_server_version(),
    }
}

fn git_sha() -> Option<String> {
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let dirs = exe_dir.into_iter().chain(std::iter::once(Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()));
    for dir in dirs {
        if let Some(sha) = command_line("git", &["rev-parse", "HEAD"], Some(&dir)) {
            let dirty = command_line("git", &["status", "--porcelain", "--untracked-files=no"], Some(&dir))
                .is_some_and(|s| !s.is_empty());
            return Some(if dirty { format!("{sha}-dirty") } else { sha });
        }
    }
    None
}

/// The first line of a command's stdout when it succeeds ("" for empty output).
fn command_line(program: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stderr(Stdio::null());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_this_machine() {
        let m = machine("no pinning");
        assert!(m.cpus >= 1);
        assert!(m.memory_bytes.unwrap_or(0) > 0);
        assert!(m.kernel.is_some());
        assert_eq!(m.pinning, "no pinning");
        assert_eq!(cpu_model("processor\t: 0\nmodel name\t: Some CPU @ 2GHz\n").as_deref(), Some("Some CPU @ 2GHz"));
        assert_eq!(cpu_model("nothing here"), None);
    }

    #[test]
    fn tool_info_has_version() {
        let t = tool_info();
        assert_eq!(t.name, "authbench");
        assert_eq!(t.version, env!("CARGO_PKG_VERSION"));
    }
}
