//! What log_repair tells its caller on stdout: the steps as they come in text, or one JSON
//! object at the end.

use std::io::Write;

use super::Args;
use crate::cli::report::file_error;
use crate::json::Object;
use crate::log::run::{Outcome, Steps};

/// The steps of the run: printed as they come in text (`log_repair: LOG: step`, so that
/// the size of a backup shows before it is written), kept for the JSON object otherwise.
pub(super) struct Report {
    pub(super) name: String,
    pub(super) text: bool,
    pub(super) steps: Vec<String>,
    /// The first write of the report that failed: the run goes on, and ends with exit
    /// status 1 once it is over.
    pub(super) lost: Option<std::io::Error>,
}

impl Steps for Report {
    fn step(&mut self, line: String) {
        if self.text && self.lost.is_none() {
            let mut out = std::io::stdout().lock();
            // A report that cannot be written must not stop a repair half-way.
            if let Err(e) =
                writeln!(out, "log_repair: {}: {line}", self.name).and_then(|()| out.flush())
            {
                self.lost = Some(e);
            }
        }
        self.steps.push(line);
    }
}

/// The error of a run whose report was lost: a reader that went away ends the tool quietly
/// (a broken pipe, as every tool); any other write error is said, with what the run did.
pub(super) fn lost_report(args: &Args, e: std::io::Error, outcome: Outcome) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return e.into();
    }
    let did = match outcome {
        Outcome::Written { .. } if args.undo.is_some() => "the backup was put back",
        Outcome::Written { .. } if args.resync => "the legs and the log were written",
        Outcome::Written { .. } => "the log was written",
        Outcome::DryRun => "nothing was written (dry run)",
        Outcome::Unchanged => "nothing was written (the log needed no change)",
    };
    file_error("stdout", format!("{e}; the report was lost; {did}"))
}

/// A usage error's JSON object, when `--format json` was asked.
pub(super) fn usage_json(what: &str) {
    // Best effort: the exit status and stderr tell the outcome anyway.
    let _ = print_json(None, &[], None, Some(what.to_string()));
}

/// The JSON report on stdout: one object with the log (unknown after a usage error), the
/// steps and the outcome, and what went wrong (as the error line says it) when the run
/// failed.
pub(super) fn print_json(
    log: Option<String>,
    steps: &[String],
    outcome: Option<&Outcome>,
    error: Option<String>,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let (outcome, bytes) = match outcome {
        None => ("failed", None),
        Some(Outcome::Unchanged) => ("unchanged", None),
        Some(Outcome::DryRun) => ("dry-run", None),
        Some(Outcome::Written { bytes }) => ("written", Some(*bytes)),
    };
    Object::begin(&mut out)?
        .field("log", log)?
        .field("outcome", outcome)?
        .field("bytes_written", bytes)?
        .list("steps", steps)?
        .field("error", error)?
        .end()?;
    writeln!(out)
}
