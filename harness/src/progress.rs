//! Progress while a run goes: one indicatif bar per strategy (time-based, with live request and
//! error counts), hidden when stderr is not a terminal (CI) or with `--no-progress`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::record::Intervals;

/// A progress display for one strategy's traffic.
pub struct Progress {
    bar: ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// `total`: warm-up + measured time; `None` runs until Ctrl-C (spinner).
    pub fn start(
        enabled: bool,
        label: &str,
        total: Option<Duration>,
        warmup: Duration,
        live: Arc<Intervals>,
    ) -> Progress {
        let visible = enabled && std::io::stderr().is_terminal();
        let bar = match total {
            Some(t) => ProgressBar::new(t.as_millis() as u64),
            None => ProgressBar::new_spinner(),
        };
        if !visible {
            bar.set_draw_target(ProgressDrawTarget::hidden());
            return Progress { bar, ticker: None };
        }
        let style = ProgressStyle::with_template("{prefix:>28} [{bar:30}] {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.to_owned());
        let b = bar.clone();
        let t0 = Instant::now();
        let ticker = tokio::spawn(async move {
            let mut last = (0u64, t0);
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let elapsed = t0.elapsed();
                b.set_position(elapsed.as_millis() as u64);
                let n = live.requests.load(Ordering::Relaxed);
                let e = live.errors.load(Ordering::Relaxed);
                if elapsed < warmup {
                    b.set_message("warming up");
                } else if n != last.0 {
                    let dt = last.1.elapsed().as_secs_f64().max(1e-3);
                    let rate = (n - last.0) as f64 / dt;
                    b.set_message(format!("{n} req, ~{rate:.0}/s, {e} errors"));
                    last = (n, Instant::now());
                }
            }
        });
        Progress { bar, ticker: Some(ticker) }
    }

    /// Set a status message (e.g. "probing revocation").
    pub fn message(&self, msg: &str) {
        self.bar.set_message(msg.to_owned());
    }

    pub fn finish(self, msg: &str) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        self.bar.finish_with_message(msg.to_owned());
    }
}
