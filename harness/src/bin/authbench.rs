//! The `authbench` binary: parse the command line, hand off to the library, print errors with context.

use std::process::ExitCode;

use authbench::cli::{Cli, Command};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("authbench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Target(args) => authbench::target::main(&args).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => authbench::run::main(&args),
        Command::Report(args) => {
            let out = authbench::report::main(&args.dirs, args.out.as_deref())?;
            eprintln!("report written to {}", out.join("report.html").display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Project(args) => authbench::project::main(&args).map(|()| ExitCode::SUCCESS).map_err(Into::into),
        Command::Strategies => {
            for kind in authbench::targets::StrategyKind::ALL {
                println!("{}\t{}", kind.name(), kind.profile().description);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge(args) => Ok(merge(&args)),
        Command::Compare(args) => match authbench::compare::main(&args) {
            Ok(false) => Ok(ExitCode::SUCCESS),
            Ok(true) => Ok(ExitCode::from(1)),
            Err(e) => {
                eprintln!("authbench compare: error: {e}");
                Ok(ExitCode::from(2))
            }
        },
    }
}

/// `authbench merge`: the merged report, its warnings and thresholds; exit 2 when the parts
/// cannot be merged, 1 when a threshold fails.
fn merge(args: &authbench::cli::MergeArgs) -> ExitCode {
    let merged = match authbench::merge::main(&args.dirs, &args.out) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("authbench merge: error: {e}");
            return ExitCode::from(2);
        }
    };
    let report = &merged.report;
    eprintln!("\n{}", authbench::output::summary_table(report));
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let mut failed = false;
    for t in &report.thresholds {
        let actual = t.actual.map_or_else(|| "not measured".to_owned(), |a| format!("{a}"));
        let verdict = if t.passed { "pass" } else { "FAIL" };
        eprintln!("threshold {} {}: {verdict} (actual {actual})", t.metric, t.condition);
        failed |= !t.passed;
    }
    eprintln!("merged {} parts: {}", report.parts.len(), merged.dir.join("report.html").display());
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTHBENCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
