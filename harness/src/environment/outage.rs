//! Store outages injected into a run: `pause` sends the store SIGSTOP and, after the duration,
//! SIGCONT (also when the task is dropped half-way); `kill` sends SIGKILL and, after the duration,
//! starts a fresh, empty `redis-server` on the same port (through the one starter,
//! [`RedisProcess::start_on`]), which the run's store then uses.

use std::time::Duration;

use anyhow::{Context, bail};

use super::redis::RedisProcess;
use crate::scenario::OutageMode;

/// How long one attempt to bring the killed server back may wait for PING.
const RESTART_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts to bring it back: the killed server's port may take a moment to be free again.
const RESTART_ATTEMPTS: usize = 50;

/// Sends SIGCONT on drop, so a paused store is never left stopped.
struct ContinueOnDrop(i32);

impl Drop for ContinueOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a pid we started and a valid signal number; no memory involved.
        unsafe {
            libc::kill(self.0, libc::SIGCONT);
        }
    }
}

pub(crate) fn signal(pid: u32, sig: i32) -> anyhow::Result<()> {
    let pid = i32::try_from(pid).context("pid out of range")?;
    if pid <= 0 {
        bail!("the store process is not running");
    }
    // SAFETY: kill(2) with a pid we started and a valid signal number; no memory involved.
    if unsafe { libc::kill(pid, sig) } != 0 {
        bail!("kill({pid}, {sig}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Stop the store process `pid` (listening on `port`) for `duration`. `pause`: SIGSTOP then
/// SIGCONT. `kill`: SIGKILL, then a fresh redis-server on the same port, returned (the caller
/// keeps it alive and uses it from then on).
pub async fn inject_outage(
    pid: u32,
    port: u16,
    mode: OutageMode,
    duration: Duration,
) -> anyhow::Result<Option<RedisProcess>> {
    match mode {
        OutageMode::Pause => {
            signal(pid, libc::SIGSTOP)?;
            let _cont = ContinueOnDrop(pid as i32);
            tokio::time::sleep(duration).await;
            Ok(None)
        }
        OutageMode::Kill => {
            signal(pid, libc::SIGKILL)?;
            tokio::time::sleep(duration).await;
            restart(port).await.map(Some)
        }
    }
}

async fn restart(port: u16) -> anyhow::Result<RedisProcess> {
    let mut last = anyhow::anyhow!("redis-server did not come back on port {port}");
    for _ in 0..RESTART_ATTEMPTS {
        match RedisProcess::start_on(port, RESTART_ATTEMPT_TIMEOUT).await {
            Ok(r) => return Ok(r),
            Err(e) => last = e.context(format!("restarting redis-server on port {port}")),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(last)
}
