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
    /// Serve one authentication strategy over the target HTTP contract (see docs/design.md).
    ///
    /// With `--listen 127.0.0.1:0` a free port is picked; the first line on stdout is
    /// `listening on http://IP:PORT`. Stops cleanly on Ctrl-C or SIGTERM.
    Target(authbench_targets::TargetArgs),
    /// Drive traffic at every strategy and write a results directory (see docs/scenarios.md).
    ///
    /// With no arguments: a short closed-loop comparison of all five strategies (under a minute),
    /// on a private redis-server when installed, else the in-process memory store.
    Run(crate::plan::RunArgs),
    /// Re-render report.html, report.md and the plots from saved results directories.
    ///
    /// One DIR is rendered into itself (or OUT); several are overlaid into one report in OUT.
    Report(ReportArgs),
    /// Compare two runs: a table of differences per strategy and operation.
    ///
    /// Exits 1 when a tracked figure (latency, target CPU, store ops, credential bytes up; throughput
    /// down) worsened by more than --max-regression percent, 2 on unreadable or malformed input.
    Compare(CompareArgs),
    /// Project what N requests per second (and M live users) cost per strategy from saved runs:
    /// target cores, Redis shards, store memory and bandwidth, each beside its measured inputs.
    Project(crate::project::ProjectArgs),
    /// List the registered strategies: one `name<TAB>description` line each (for scripts).
    Strategies,
    /// Merge the parts of a split run (`authbench run --part K/N`) into one results directory and
    /// report: histograms added exactly, counters summed, timelines aligned on the wall clock.
    ///
    /// Exits 2 when the parts cannot be merged (different scenarios or builds, a part missing or
    /// given twice), 1 when a scenario threshold fails on the merged figures.
    Merge(MergeArgs),
}

/// `authbench merge DIR... -o OUT`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The parts' results directories (each written by `authbench run --part K/N`).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<std::path::PathBuf>,
    /// Where to write the merged results directory.
    #[arg(short = 'o', long = "out", value_name = "OUT", required = true)]
    pub out: std::path::PathBuf,
}

/// `authbench report DIR [DIR...] [-o OUT]`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Results directories (each holding report.json), or report.json files.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<std::path::PathBuf>,
    /// Where to write; default: the results directory itself (required with several DIRs).
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    pub out: Option<std::path::PathBuf>,
}

/// `authbench compare BASE NEW [--max-regression PCT]`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline: a report.json file or a results directory.
    #[arg(value_name = "BASE")]
    pub base: std::path::PathBuf,
    /// The new run: a report.json file or a results directory.
    #[arg(value_name = "NEW")]
    pub new: std::path::PathBuf,
    /// Allowed worsening of any tracked figure, percent.
    #[arg(long = "max-regression", value_name = "PCT", default_value_t = crate::compare::DEFAULT_MAX_REGRESSION_PCT)]
    pub max_regression_pct: f64,
    /// Significance level of the change test when both runs have repetitions (`--repeat`): a
    /// figure regresses only when it worsened beyond PCT and the two-sided Mann-Whitney p-value is
    /// below this.
    #[arg(long, value_name = "ALPHA", default_value_t = crate::stats::DEFAULT_ALPHA)]
    pub alpha: f64,
    /// Only these figures can fail the compare (repeatable or comma-separated keys, as in
    /// docs/figures.md: `target_cpu_us_per_request`, `api.p50_us`); the others are still shown.
    /// Default: every tracked figure.
    #[arg(long, value_name = "FIGURE", value_delimiter = ',')]
    pub gate: Vec<String>,
    /// `text` (a table for the terminal) or `markdown` (for a pull-request comment).
    #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
    pub format: CompareFormat,
}

/// Output form of `authbench compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    Text,
    Markdown,
}
