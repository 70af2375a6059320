//! Shared test helpers: the built `authbench` binary, tiny HTTP servers written for one test.

#![allow(dead_code)]

use std::path::PathBuf;

/// The `authbench` binary cargo built for these tests.
pub fn authbench_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_authbench"))
}

/// Repository root (the workspace).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
