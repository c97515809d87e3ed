//! What every binary shares: exit codes, messages on stderr, inputs and outputs, progress
//! bars and what happens on SIGINT/SIGTERM.

pub mod open;
pub mod output;
pub mod progress;

pub use open::{looks_like_xml, open_era_input, open_era_output};
pub use output::Output;
pub use progress::{byte_progress, stderr_is_tty};

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::pdata::report::Problems;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for an error found in the data, in I/O or in the input files.
pub const EXIT_ERROR: u8 = 1;
/// Exit code for a command-line usage error (clap uses it too).
pub const EXIT_USAGE: u8 = 2;

/// Runs a tool's body and turns its outcome into an exit code. An error is printed as one
/// line on stderr (`tool: message: cause`), except a broken pipe on stdout, which ends the
/// tool quietly (`era_dump … | head`). SIGINT, SIGTERM and SIGHUP are taken as
/// [`interrupt`] describes.
pub fn run(tool: &'static str, body: impl FnOnce() -> anyhow::Result<u8>) -> ExitCode {
    run_quiet(tool, false, body)
}

/// Like [`run`], but with `quiet` an error shows only in the exit code.
pub fn run_quiet(
    tool: &'static str,
    quiet: bool,
    body: impl FnOnce() -> anyhow::Result<u8>,
) -> ExitCode {
    crate::interrupt::install(tool);
    match body() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if !quiet && !is_broken_pipe(&e) {
                say(&format!("{tool}: {}", one_line(&e)));
            }
            // An error that a signal caused ends the way the signal would have.
            match crate::interrupt::stopped_by() {
                Some(sig) => ExitCode::from(crate::interrupt::exit_status(sig)),
                None => ExitCode::from(EXIT_ERROR),
            }
        }
    }
}

/// Writes one line on stderr. A stderr that is closed or whose reader went away is not an
/// error worth dying for: the exit status still tells the outcome.
pub fn say(line: &str) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// An error and its causes on one line, each separated by `: `.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for (i, cause) in e.chain().enumerate() {
        let text = cause.to_string();
        if i > 0 {
            if s.ends_with(&text) {
                continue;
            }
            s.push_str(": ");
        }
        s.push_str(&text);
    }
    s.replace('\n', " ")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Prints the problems found in `input` on stderr, one line each, `tool: input: problem`.
pub fn report_problems(tool: &str, input: &Path, problems: &Problems) {
    for p in problems.kept() {
        say(&format!("{tool}: {}: {p}", input.display()));
    }
    if problems.dropped() > 0 {
        say(&format!(
            "{tool}: {}: … and {} more problems",
            input.display(),
            problems.dropped()
        ));
    }
}
