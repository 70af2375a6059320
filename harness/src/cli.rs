//! The `authbench` command line: subcommands and their flags. Parsing only; each subcommand's work
//! lives in its own module.

use clap::{Parser, Subcommand};

/// Measure what sessions and JWTs cost: start target servers, drive the same traffic at each, and
/// write a report with latency, throughput, credential bytes, store load, CPU per request and the
/// revocation window.
#[derive(Debug, Parser)]
#[command(name = "authbench", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve one authentication strategy over the target HTTP contract (see DESIGN.md).
    ///
    /// With `--listen 127.0.0.1:0` a free port is picked; the first line on stdout is
    /// `listening on http://IP:PORT`. Stops cleanly on Ctrl-C or SIGTERM.
    Target(authbench_targets::TargetArgs),
    /// Drive traffic at every strategy and write a results directory (see docs/scenarios.md).
    ///
    /// With no arguments: a short closed-loop comparison of all five strategies (under a minute),
    /// on a private redis-server when installed, else the in-process memory store.
    Run(crate::plan::RunArgs),
}
