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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AUTHBENCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
