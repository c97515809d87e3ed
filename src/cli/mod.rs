//! What every binary shares: exit codes, messages on stderr, inputs and outputs, progress
//! bars and what happens on SIGINT/SIGTERM.

pub mod open;
pub mod output;
pub mod progress;
pub mod report;

pub use crate::interrupt::say;
pub use open::looks_like_xml;
pub use output::Output;
pub use progress::{
    blocks_bar, byte_progress, pending_blocks_bar, start_blocks_bar, stderr_is_tty,
    stream_progress, Counted,
};

use std::io;
use std::process::ExitCode;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for an error found in the data, in I/O or in the input files.
pub const EXIT_ERROR: u8 = 1;
/// Exit code for a command-line usage error (clap uses it too).
pub const EXIT_USAGE: u8 = 2;

/// Runs a tool's body and turns its outcome into an exit code. An error is printed as one
/// line on stderr (`tool: message: cause`), except a broken pipe on stdout, which ends the
/// tool quietly (`era_dump … | head`). SIGINT, SIGTERM and SIGHUP are taken as
/// [`crate::interrupt`] describes.
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
                say(&report::error_line(tool, &e));
            }
            // An error that a signal caused ends the way the signal would have.
            match crate::interrupt::stopped_by() {
                Some(sig) => ExitCode::from(crate::interrupt::exit_status(sig)),
                None => ExitCode::from(EXIT_ERROR),
            }
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
