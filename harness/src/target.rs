//! `authbench target`: validate the flags, bind, announce the address, serve until a signal.

use anyhow::Context;
use tokio::net::TcpListener;

use crate::targets::TargetArgs;

/// Run a target until Ctrl-C or SIGTERM.
pub fn main(args: &TargetArgs) -> anyhow::Result<()> {
    let config = args.validate()?;
    let rt = runtime(args.worker_threads).context("starting the tokio runtime")?;
    rt.block_on(async move {
        let listener = TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        // The contract: this is the first line on stdout, and tools wait for it.
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        println!("listening on {scheme}://{addr}");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        authbench_targets::serve(config, listener, shutdown_signal()).await
    })
}

/// One worker thread: the current-thread runtime (see `TargetArgs::worker_threads`); otherwise
/// the multi-thread runtime with the given number of workers.
fn runtime(worker_threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
