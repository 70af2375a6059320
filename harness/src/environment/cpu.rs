//! Where the target and the driver run: on a machine with two or more CPUs the target gets one
//! CPU to itself and the driver the rest ([`cpu_plan`]), so the two do not steal each other's
//! cycles and per-request CPU stays comparable across strategies.

use anyhow::{Context, bail};

pub(crate) fn cpu_set(cpus: &[usize]) -> anyhow::Result<libc::cpu_set_t> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
