//! How much memory a run of a program took at its peak: the tests that show a tool's memory
//! does not grow with its input compare this at two sizes (never a timing).
//!
//! The run is measured by `examples/bench_timer`, a small process started between the test
//! and the program. The kernel's peak for a process also counts the memory of the process
//! it was started from (a child starts as a copy of its parent, or shares its memory until
//! it runs the program): measured straight from a test, a run could never look smaller
//! than the test process itself.

use super::run::Outcome;
use std::path::Path;
use std::process::Command;

/// Runs `cmd` (its program, arguments, environment and folder) to its end, its output
/// discarded, and returns its exit (0, or 1 with the reason in `stderr` after the program's
/// own errors) and its peak resident memory in KiB.
pub fn peak_memory_kib(cmd: &Command) -> (Outcome, u64) {
    let timer = Path::new(env!("CARGO_BIN_EXE_era_check")).with_file_name("examples/bench_timer");
    let dir = tempfile::tempdir().expect("temp dir");
    let errors = dir.path().join("stderr");
    let mut timed = Command::new(&timer);
    timed
        .arg(&errors)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        timed.current_dir(d);
    }
    let out = timed.output().unwrap_or_else(|e| {
        let t = timer.display();
        panic!("{t} (built by `cargo test`, or `cargo build --example bench_timer`): {e}")
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut stderr = std::fs::read_to_string(&errors).unwrap_or_default();
    stderr += &String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    let kib = match stdout.split_whitespace().nth(1) {
        Some(kib) if code == 0 => kib.parse().expect("bench_timer's peak"),
        _ => 0,
    };
    let outcome = Outcome {
        code,
        stdout: String::new(),
        stderr,
    };
    (outcome, kib)
}

/// The peak memory, in KiB, of `bin` run with `args`, which must succeed.
pub fn peak_kib(bin: &str, args: &[&str]) -> u64 {
    let (o, kib) = peak_memory_kib(super::run::command(bin).args(args));
    assert!(o.success(), "{bin} {args:?}: {o:?}");
    kib
}
