//! `ir-gate`: deterministic instruction counts of the verification paths, and the CI gate on them.
//!
//! - `ir-gate list`: the measured paths, one per line.
//! - `ir-gate run PATH`: set PATH up, call it twice to warm up (lazy statics, allocator), then call it
//!   [`ITERS`] times inside [`authbench_gate_measured`]. Meant to run under
//!   `valgrind --tool=callgrind --toggle-collect=authbench_gate_measured`, so only those calls count.
//! - `ir-gate check [--update] [--threshold PCT] [--baseline FILE] [--jobs N] [--only PREFIX]`: run every
//!   path under callgrind, print Ir per call next to the committed baseline, exit 1 when a path rose
//!   more than PCT percent (default 5) or a baselined path no longer runs. `--update` rewrites the
//!   baseline instead. `scripts/bench-ci` builds this binary and calls `check`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use authbench_benches::{
    self as fx, PerCallVerifier, RawSigner, RawVerifier, SIZES, TYPICAL, jsonwebtoken_signing_der,
    sign_parsing_key_per_call, split_token,
};
use authbench_targets::Alg;
use authbench_targets::config::{AuthzSource, StrategyKind};
use authbench_targets::strategy::{
    Credential, Grant, JwtDenylistStrategy, JwtRefreshStrategy, JwtStrategy, SessionStrategy, Strategy,
};
use authbench_targets::token::{AccessClaims, JwtCodec};

/// Measured calls per path; the reported figure is the total divided by this.
const ITERS: u64 = 10;
const DEFAULT_THRESHOLD_PCT: f64 = 5.0;
const MEASURED_SYMBOL: &str = "authbench_gate_measured";

/// The only code callgrind counts (`--toggle-collect`): `iters` calls of `f`.
#[unsafe(no_mangle)]
#[inline(never)]
pub fn authbench_gate_measured(f: &mut dyn FnMut(), iters: u64) {
    for _ in 0..iters {
        f();
    }
}

/// The layers of `benches/benches/tokens.rs`, typical claims: from the aws-lc-rs floor up to the codec.
const VERIFY_LAYERS: [&str; 5] = ["1-floor", "2-key-per-call", "3-jwt-crypto-verify", "4-jwt-decode", "5-codec-verify"];
const ISSUE_LAYERS: [&str; 4] = ["1-floor", "2-key-per-call", "3-jwt-crypto-sign", "4-codec-issue"];

/// Every gated path. Names are stable: they key the baseline.
fn paths() -> Vec<String> {
    let mut p = Vec::new();
    for alg in Alg::ALL {
        for size in SIZES {
            p.push(format!("verify/{alg}/{}", size.name));
        }
    }
    for alg in Alg::ALL {
        p.push(format!("floor_verify/{alg}/typical"));
    }
    for alg in Alg::ALL {
        p.push(format!("issue/{alg}/typical"));
    }
    for alg in Alg::ALL {
        for layer in VERIFY_LAYERS {
            p.push(format!("verify_layers/{layer}/{alg}"));
        }
    }
    for alg in Alg::ALL {
        for layer in ISSUE_LAYERS {
            p.push(format!("issue_layers/{layer}/{alg}"));
        }
    }
    for s in [
        "session",
        "jwt/HS256",
        "jwt/ES256",
        "jwt+authz-store/HS256",
        "jwt-denylist/HS256",
        "jwt-denylist/ES256",
        "jwt-refresh/HS256",
    ] {
        p.push(format!("check_memory/{s}"));
    }
    p
}

fn parse_alg(name: &str) -> Result<Alg, String> {
    Alg::ALL.into_iter().find(|a| a.name() == name).ok_or_else(|| format!("unknown algorithm `{name}`"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

fn codec(kind: StrategyKind, alg: Alg) -> std::sync::Arc<JwtCodec> {
    let c = fx::target_config(kind, alg, AuthzSource::Claims);
    std::sync::Arc::new(JwtCodec::new(
        fx::key_material(alg),
        fx::ISSUER,
        fx::AUDIENCE,
        c.access_ttl,
        c.leeway,
        TYPICAL.bloat,
    ))
}

/// Log in, check the credential works, then measure `authenticate` with it.
fn measure_check<S: Strategy>(strategy: S) -> Result<(), String> {
    let rt = runtime();
    let (cred, cookie) = rt.block_on(async {
        let grant = strategy.login(fx::SUBJECT, Credential::Missing).await.map_err(|e| format!("login: {e:?}"))?;
        let cred = match grant {
            Grant::Session { sid, .. } => (sid, true),
            Grant::Tokens { access_token, .. } => (access_token, false),
            Grant::Anonymous { .. } => return Err("no credential".to_owned()),
        };
        let c = if cred.1 { Credential::Cookie(&cred.0) } else { Credential::Bearer(&cred.0) };
        strategy.authenticate(c).await.map_err(|e| format!("authenticate: {e:?}"))?;
        Ok(cred)
    })?;
    let present = || if cookie { Credential::Cookie(&cred) } else { Credential::Bearer(&cred) };
    measure(|| {
        let r = rt.block_on(strategy.authenticate(black_box(present())));
        black_box(r.expect("check"));
    });
    Ok(())
}

/// One token per call (warm-up included). ECDSA signatures are randomized and its verify time depends
/// a little on the signature value; averaging over distinct tokens keeps the ES* counts within ~0.5%.
fn distinct_tokens(codec: &JwtCodec) -> Vec<String> {
    (0..ITERS + 2).map(|_| fx::token(codec)).collect()
}

fn measure(mut f: impl FnMut()) {
    f();
    f();
    authbench_gate_measured(&mut f, ITERS);
}

fn run(path: &str) -> Result<(), String> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["verify", alg, size] => {
            let size = SIZES.into_iter().find(|s| s.name == *size).ok_or("unknown claim size")?;
            let codec = fx::codec(parse_alg(alg)?, size);
            let tokens = distinct_tokens(&codec);
            let mut i = 0;
            measure(|| {
                i += 1;
                black_box(codec.verify(black_box(&tokens[i % tokens.len()])).expect("verify"));
            });
        }
        ["floor_verify", alg, "typical"] => {
            let alg = parse_alg(alg)?;
            let signed: Vec<_> = distinct_tokens(&fx::codec(alg, TYPICAL)).iter().map(|t| split_token(t)).collect();
            let raw = RawVerifier::new(alg);
            let mut i = 0;
            measure(|| {
                i += 1;
                let (msg, sig) = &signed[i % signed.len()];
                assert!(raw.verify(black_box(msg), black_box(sig)));
            });
        }
        ["issue", alg, "typical"] => {
            let codec = fx::codec(parse_alg(alg)?, TYPICAL);
            measure(|| {
                black_box(codec.issue(black_box(fx::SUBJECT), Some(fx::JTI)).expect("issue"));
            });
        }
        ["verify_layers", layer, alg] => {
            let alg = parse_alg(alg)?;
            let codec = fx::codec(alg, TYPICAL);
            let keys = fx::key_material(alg);
            let validation = fx::validation(alg);
            let tokens = distinct_tokens(&codec);
            let signed: Vec<_> = tokens.iter().map(|t| split_token(t)).collect();
            let raw = RawVerifier::new(alg);
            let per_call = PerCallVerifier::new(alg);
            let mut i = 0;
            let layer = *layer;
            if !VERIFY_LAYERS.contains(&layer) {
                return Err(format!("unknown layer `{layer}`"));
            }
            measure(|| {
                i += 1;
                let token = &tokens[i % tokens.len()];
                let (msg, sig) = &signed[i % signed.len()];
                match layer {
                    "1-floor" => assert!(raw.verify(black_box(msg), black_box(sig))),
                    "2-key-per-call" => assert!(per_call.verify(black_box(msg), black_box(sig))),
                    "3-jwt-crypto-verify" => {
                        let sig_b64 = token.rsplit_once('.').expect("jws").1;
                        let ok = jsonwebtoken::crypto::verify(black_box(sig_b64), msg, &keys.decoding, alg.jwt());
                        assert!(ok.expect("verify"));
                    }
                    "4-jwt-decode" => {
                        let d = jsonwebtoken::decode::<AccessClaims>(black_box(token), &keys.decoding, &validation);
                        black_box(d.expect("decode"));
                    }
                    _ => {
                        black_box(codec.verify(black_box(token)).expect("verify"));
                    }
                }
            });
        }
        ["issue_layers", layer, alg] => {
            let alg = parse_alg(alg)?;
            let codec = fx::codec(alg, TYPICAL);
            let keys = fx::key_material(alg);
            let (msg, _) = split_token(&fx::token(&codec));
            let raw = RawSigner::new(alg);
            let der = jsonwebtoken_signing_der(alg);
            let layer = *layer;
            if !ISSUE_LAYERS.contains(&layer) {
                return Err(format!("unknown layer `{layer}`"));
            }
            measure(|| match layer {
                "1-floor" => {
                    black_box(raw.sign(black_box(&msg)));
                }
                "2-key-per-call" => {
                    black_box(sign_parsing_key_per_call(alg, &der, black_box(&msg)));
                }
                "3-jwt-crypto-sign" => {
                    black_box(jsonwebtoken::crypto::sign(black_box(&msg), &keys.encoding, alg.jwt()).expect("sign"));
                }
                _ => {
                    black_box(codec.issue(black_box(fx::SUBJECT), Some(fx::JTI)).expect("issue"));
                }
            });
        }
        ["check_memory", "session"] => {
            let cfg = fx::target_config(SessionStrategy::KIND, Alg::Hs256, AuthzSource::Claims);
            let roles = codec(SessionStrategy::KIND, Alg::Hs256).roles().to_vec();
            measure_check(SessionStrategy::new(fx::memory_store(), cfg.session_ttl, &roles))?;
        }
        ["check_memory", "jwt", alg] | ["check_memory", "jwt+authz-store", alg] => {
            let authz = if parts[1] == "jwt" { AuthzSource::Claims } else { AuthzSource::Store };
            measure_check(JwtStrategy::new(codec(JwtStrategy::KIND, parse_alg(alg)?), fx::memory_store(), authz))?;
        }
        ["check_memory", "jwt-denylist", alg] => {
            let alg = parse_alg(alg)?;
            let cfg = fx::target_config(JwtDenylistStrategy::KIND, alg, AuthzSource::Claims);
            let c = codec(JwtDenylistStrategy::KIND, alg);
            measure_check(JwtDenylistStrategy::new(c, fx::memory_store(), &cfg))?;
        }
        ["check_memory", "jwt-refresh", alg] => {
            let alg = parse_alg(alg)?;
            let cfg = fx::target_config(JwtRefreshStrategy::KIND, alg, AuthzSource::Claims);
            let c = codec(JwtRefreshStrategy::KIND, alg);
            measure_check(JwtRefreshStrategy::new(c, fx::memory_store(), &cfg))?;
        }
        _ => return Err(format!("unknown path `{path}` (see `ir-gate list`)")),
    }
    Ok(())
}

/// Run one path under callgrind; Ir per call.
fn callgrind(exe: &Path, path: &str, out_dir: &Path, index: usize) -> Result<u64, String> {
    let out = out_dir.join(format!("callgrind.{index}.out"));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(format!("--toggle-collect={MEASURED_SYMBOL}"))
        .args(["--dump-instr=no", "--compress-strings=no", "--compress-pos=no"])
        .arg(exe)
        .args(["run", path])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("==")).rev().take(3).collect();
        return Err(format!(
            "exited with {}: {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| format!("no callgrind output: {e}"))?;
    let total = text
        .lines()
        .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .ok_or("no `totals:` line in the callgrind output")?;
    if total == 0 {
        return Err(format!("0 instructions counted: is `{MEASURED_SYMBOL}` in the binary's symbols?"));
    }
    let _ = std::fs::remove_file(&out);
    Ok(total.div_ceil(ITERS))
}

fn read_baseline(file: &Path) -> Result<BTreeMap<String, u64>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (path, ir) =
            line.split_once('\t').ok_or_else(|| format!("{}:{}: expected `path<TAB>Ir`", file.display(), n + 1))?;
        let ir = ir.trim().parse().map_err(|_| format!("{}:{}: `{ir}` is not a count", file.display(), n + 1))?;
        map.insert(path.to_owned(), ir);
    }
    Ok(map)
}

fn tool_versions() -> String {
    let first_line = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.lines().next().map(str::to_owned))
            .unwrap_or_else(|| format!("{cmd}: unknown"))
    };
    format!("{}; {}", first_line("rustc", "-V"), first_line("valgrind", "--version"))
}

fn write_baseline(file: &Path, results: &BTreeMap<String, u64>, order: &[String]) -> Result<(), String> {
    let mut text = String::new();
    text.push_str(
        "# authbench instruction-count baseline: callgrind Ir per call of each path (benches/gate/main.rs),\n",
    );
    text.push_str(&format!("# mean of {ITERS} calls after 2 warm-up calls, release build.\n"));
    text.push_str(
        "# Regenerate with `scripts/bench-ci --update` and commit this file with the change that moved it.\n",
    );
    text.push_str(&format!("# tools: {}\n", tool_versions()));
    for path in order {
        if let Some(ir) = results.get(path) {
            text.push_str(&format!("{path}\t{ir}\n"));
        }
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

struct CheckArgs {
    update: bool,
    threshold: f64,
    baseline: PathBuf,
    jobs: usize,
    only: Option<String>,
}

fn parse_check_args(args: &[String]) -> Result<CheckArgs, String> {
    let mut a = CheckArgs {
        update: false,
        threshold: DEFAULT_THRESHOLD_PCT,
        baseline: Path::new(env!("CARGO_MANIFEST_DIR")).join("baseline/instructions.tsv"),
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        only: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--update" => a.update = true,
            "--threshold" => {
                let v = value("--threshold")?;
                a.threshold =
                    v.trim_end_matches('%').parse().map_err(|_| format!("--threshold: `{v}` is not a number"))?;
            }
            "--baseline" => a.baseline = PathBuf::from(value("--baseline")?),
            "--jobs" => a.jobs = value("--jobs")?.parse().map_err(|_| "--jobs: not a number".to_owned())?,
            "--only" => a.only = Some(value("--only")?),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    a.jobs = a.jobs.max(1);
    Ok(a)
}

fn check(args: &CheckArgs) -> Result<bool, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let all = paths();
    let selected: Vec<String> =
        all.iter().filter(|p| args.only.as_deref().is_none_or(|o| p.starts_with(o))).cloned().collect();
    let out_dir = std::env::temp_dir().join(format!("authbench-ir-gate-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;

    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<String, Result<u64, String>>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(selected.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = selected.get(i) else { break };
                    let r = callgrind(&exe, path, &out_dir, i);
                    results.lock().expect("results").insert(path.clone(), r);
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&out_dir);
    let results = results.into_inner().expect("results");
    let baseline = read_baseline(&args.baseline)?;

    if args.update {
        let mut merged = baseline.clone();
        let mut failed = false;
        for (path, r) in &results {
            match r {
                Ok(ir) => {
                    merged.insert(path.clone(), *ir);
                }
                Err(e) => {
                    eprintln!("not baselined: {path}: {e}");
                    merged.remove(path);
                    failed = true;
                }
            }
        }
        write_baseline(&args.baseline, &merged, &all)?;
        println!("wrote {} paths to {}", merged.len(), args.baseline.display());
        if failed {
            eprintln!("some paths do not run yet; they are left out of the baseline (and so not gated)");
        }
        return Ok(true);
    }

    println!("{:<32} {:>14} {:>14} {:>9}", "path", "baseline Ir", "current Ir", "change");
    let mut failures = Vec::new();
    for path in &selected {
        let base = baseline.get(path).copied();
        match (&results[path], base) {
            (Ok(ir), Some(b)) => {
                let pct = (*ir as f64 - b as f64) / b as f64 * 100.0;
                let mark = if pct > args.threshold {
                    failures.push(format!(
                        "{path}: {b} -> {ir} instructions per call (+{pct:.2}%, threshold {}%)",
                        args.threshold
                    ));
                    "  REGRESSION"
                } else if pct < -args.threshold {
                    "  improved: update the baseline"
                } else {
                    ""
                };
                println!("{path:<32} {b:>14} {ir:>14} {pct:>+8.2}%{mark}");
            }
            (Ok(ir), None) => println!("{path:<32} {:>14} {ir:>14} {:>9}  new: not gated until `--update`", "-", "-"),
            (Err(e), Some(b)) => {
                println!("{path:<32} {b:>14} {:>14} {:>9}  FAILED", "-", "-");
                failures.push(format!("{path}: baselined but no longer runs: {e}"));
            }
            (Err(e), None) => println!("{path:<32} {:>14} {:>14} {:>9}  skipped (not baselined): {e}", "-", "-", "-"),
        }
    }
    if args.only.is_none() {
        for path in baseline.keys().filter(|p| !all.contains(p)) {
            println!("{path:<32} in the baseline but no longer a path: ignored (remove it with `--update`)");
        }
    }
    let versions = tool_versions();
    let recorded = std::fs::read_to_string(&args.baseline).unwrap_or_default();
    if !baseline.is_empty() && !recorded.contains(&versions) {
        eprintln!("note: the baseline was recorded with other tool versions than `{versions}`; counts may shift");
    }
    if failures.is_empty() {
        println!("ok: no path rose more than {}% over {}", args.threshold, args.baseline.display());
        Ok(true)
    } else {
        eprintln!("\ninstruction-count gate FAILED ({} path(s) past {}%):", failures.len(), args.threshold);
        for f in &failures {
            eprintln!("  {f}");
        }
        eprintln!(
            "If the increase is intended, run `scripts/bench-ci --update` and commit benches/baseline/instructions.tsv."
        );
        Ok(false)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("list") => {
            for p in paths() {
                println!("{p}");
            }
            Ok(true)
        }
        Some("run") if args.len() == 2 => run(&args[1]).map(|()| true),
        Some("check") => parse_check_args(&args[1..]).and_then(|a| check(&a)),
        _ => Err("usage: ir-gate list | run PATH | check [--update] [--threshold PCT] [--baseline FILE] [--jobs N] [--only PREFIX]"
            .to_owned()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ir-gate: {e}");
            ExitCode::from(2)
        }
    }
}
