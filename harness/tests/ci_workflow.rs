//! The shipped CI example (`.github/workflows/authbench-ci-example.yml`) and its scenario
//! (`scenarios/ci.toml`): every `authbench ...` command in the workflow's `run:` steps parses with
//! the real command line, every `run` plans, and every script and scenario it names exists. The
//! YAML is read minimally (`run:` values, inline or block scalars, and the top-level `env:`), which
//! is all the check needs.

use std::collections::BTreeMap;
use std::path::Path;

use authbench::cli::{Cli, Command};
use authbench::plan::{self, RunArgs};
use clap::Parser;

const WORKFLOW: &str = ".github/workflows/authbench-ci-example.yml";

/// The value of every `run:` key, in file order (block scalars with their indentation removed).
fn run_steps(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start().trim_start_matches("- ");
        i += 1;
        let Some(value) = trimmed.strip_prefix("run:") else { continue };
        let value = value.trim();
        if !value.starts_with('|') && !value.starts_with('>') {
            steps.push(value.to_string());
            continue;
        }
        let key_indent = line.len() - line.trim_start().len();
        let mut block = Vec::new();
        while i < lines.len() {
            let l = lines[i];
            let indent = l.len() - l.trim_start().len();
            if !l.trim().is_empty() && indent <= key_indent {
                break;
            }
            block.push(l);
            i += 1;
        }
        let strip = block.iter().filter(|l| !l.trim().is_empty()).map(|l| l.len() - l.trim_start().len()).min();
        let text: Vec<&str> = block.iter().map(|l| l.get(strip.unwrap_or(0)..).unwrap_or("")).collect();
        steps.push(text.join("\n"));
    }
    steps
}

/// The top-level `env:` block (`KEY: "value"` lines indented under it).
fn top_level_env(yaml: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut inside = false;
    for line in yaml.lines() {
        if line.starts_with("env:") {
            inside = true;
            continue;
        }
        if inside && !line.starts_with(' ') && !line.trim().is_empty() {
            break;
        }
        if inside && let Some((k, v)) = line.trim().split_once(':') {
            env.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
        }
    }
    env
}

/// Shell logical lines of a step: comments dropped, `\` continuations joined, `${{ … }}`
/// expressions replaced by a placeholder word and `$VAR` / `"$VAR"` by the env value.
fn logical_lines(step: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    let joined = step.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut l = line.to_string();
        while let Some(start) = l.find("${{") {
            let end = l[start..].find("}}").map_or(l.len(), |e| start + e + 2);
            l.replace_range(start..end, "42");
        }
        for (k, v) in env {
            l = l.replace(&format!("\"${k}\""), v).replace(&format!("${k}"), v);
        }
        out.push(l);
    }
    out
}

const SHELL_OPERATORS: [&str; 9] = ["&&", "||", ";", "|", ">", ">>", "<", "2>&1", ")"];

/// Every `authbench` invocation in a logical line: a command (the first word, or the first after a
/// shell operator) whose program is `authbench` or a path ending in `/authbench`, with its
/// arguments up to the next shell operator or redirection.
fn authbench_invocations(line: &str) -> Vec<Vec<String>> {
    let words = shlex::split(line).unwrap_or_else(|| panic!("unbalanced quotes in `{line}`"));
    let mut found = Vec::new();
    let mut command_start = true;
    let mut i = 0;
    while i < words.len() {
        let word = words[i].as_str();
        i += 1;
        let is_program = command_start && (word == "authbench" || word.ends_with("/authbench"));
        command_start = SHELL_OPERATORS.contains(&word);
        if !is_program {
            continue;
        }
        let mut argv = vec!["authbench".to_string()];
        while i < words.len() && !SHELL_OPERATORS.contains(&words[i].as_str()) {
            argv.push(words[i].clone());
            i += 1;
        }
        found.push(argv);
    }
    found
}

fn workflow() -> (String, Vec<String>) {
    let root = crate::util::repo_root();
    let yaml = std::fs::read_to_string(root.join(WORKFLOW)).expect("the CI example workflow");
    let env = top_level_env(&yaml);
    let lines = run_steps(&yaml).iter().flat_map(|s| logical_lines(s, &env)).collect();
    (yaml, lines)
}

#[test]
fn every_authbench_command_in_the_workflow_parses() {
    let (_, lines) = workflow();
    let root = crate::util::repo_root();
    let (mut runs, mut compares) = (0, 0);
    for line in &lines {
        for argv in authbench_invocations(line) {
            let cli =
                Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("`{}` does not parse:\n{e}", argv.join(" ")));
            match cli.command {
                Command::Run(args) => {
                    let scenario = args.scenario.clone().expect("the workflow names its scenario");
                    let args = RunArgs { scenario: Some(root.join(scenario)), ..args };
                    assert!(args.repeat >= 5, "`{}`: the gate needs repeated runs", argv.join(" "));
                    plan::build(&args).unwrap_or_else(|e| panic!("`{}` does not plan: {e}", argv.join(" ")));
                    runs += 1;
                }
                Command::Compare(args) => {
                    assert!(!args.gate.is_empty(), "`{}`: the gated figures are named", argv.join(" "));
                    authbench::compare::check_gate(&args.gate).unwrap_or_else(|e| panic!("`{}`: {e}", argv.join(" ")));
                    compares += 1;
                }
                other => panic!("unexpected authbench command in the workflow: {other:?}"),
            }
        }
    }
    // The baseline run (when none is cached), the new run, the compare.
    assert_eq!((runs, compares), (2, 1), "authbench commands found in {WORKFLOW}: {lines:#?}");
}

#[test]
fn every_script_and_scenario_the_workflow_names_exists() {
    let (_, lines) = workflow();
    let root = crate::util::repo_root();
    let mut named = 0;
    for line in &lines {
        for word in shlex::split(line).unwrap_or_default() {
            if word.starts_with("scripts/") || (word.starts_with("scenarios/") && word.ends_with(".toml")) {
                let path = root.join(&word);
                assert!(path.is_file(), "{WORKFLOW} names {word}, which does not exist");
                if word.starts_with("scripts/") {
                    assert!(is_executable(&path), "{word} is not executable");
                }
                named += 1;
            }
        }
    }
    assert!(named >= 4, "setup, bench-ci and the scenario twice: found {named}");
}

#[test]
fn the_workflow_is_plain_yaml_with_pinned_actions() {
    let (yaml, _) = workflow();
    assert!(!yaml.contains('\t'), "YAML forbids tabs for indentation");
    for line in yaml.lines().map(str::trim) {
        if let Some(action) = line.trim_start_matches("- ").strip_prefix("uses:") {
            assert!(action.trim().contains('@'), "action `{}` must be pinned to a version", action.trim());
        }
    }
    for needed in ["pull_request", "actions/cache/restore", "scripts/bench-ci", "gh pr comment", "--format markdown"] {
        assert!(yaml.contains(needed), "{WORKFLOW} should contain `{needed}`");
    }
}

#[test]
fn the_minimal_reader_finds_block_and_inline_steps() {
    let yaml = "env:\n  N: \"3\"\njobs:\n  a:\n    steps:\n      - run: echo one\n      - name: x\n        run: |\n          authbench compare a b \\\n            --max-regression \"$N\" > out.md\n          echo ${{ github.sha }}\n      - run: true\n";
    let env = top_level_env(yaml);
    assert_eq!(env.get("N").map(String::as_str), Some("3"));
    let steps = run_steps(yaml);
    assert_eq!(steps.len(), 3);
    let lines: Vec<String> = steps.iter().flat_map(|s| logical_lines(s, &env)).collect();
    let normalized: Vec<String> = lines.iter().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(normalized, ["echo one", "authbench compare a b --max-regression 3 > out.md", "echo 42", "true"]);
    // `-p authbench` is an argument, not a command.
    assert!(authbench_invocations("cargo build -p authbench && target/release/authbench run x.toml").len() == 1);
    assert_eq!(
        authbench_invocations(&lines[1]),
        [["authbench", "compare", "a", "b", "--max-regression", "3"].map(String::from).to_vec()]
    );
}

#[test]
fn the_ci_scenario_measures_every_strategy_and_three_algorithms() {
    let path = crate::util::repo_root().join("scenarios/ci.toml");
    let p = plan::build(&RunArgs { scenario: Some(path), ..RunArgs::default() }).expect("ci.toml plans");
    let labels: Vec<&str> = p.variants.iter().map(|v| v.label.as_str()).collect();
    for strategy in ["none", "session"] {
        assert!(labels.contains(&strategy), "{labels:?}");
    }
    for jwt in ["jwt", "jwt-denylist", "jwt-refresh"] {
        for alg in ["HS256", "ES256", "EdDSA"] {
            let label = format!("{jwt} alg={alg}");
            assert!(labels.contains(&label.as_str()), "{label} missing from {labels:?}");
        }
    }
    assert_eq!(p.variants.len(), 11);
    assert_eq!(p.revocation_probes, 0);
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}
