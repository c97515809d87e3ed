//! era_check: its command line and its run.

use std::process::ExitCode;

use clap::Parser;

use super::{era_files, ReportFormat};
use crate::cli::report::{error_message, findings_json, print_findings};
use crate::cli::{self, EXIT_ERROR, EXIT_OK};
use crate::era::check::{check, CheckOptions};
use crate::era::live;
use crate::pdata::report::{Problems, Severity};

/// The arguments of era_check.
#[derive(Parser)]
#[command(
    name = "era_check",
    version,
    about = "Validate dm-era metadata on a device or file",
    long_about = "Validate dm-era metadata: the superblock, the writeset tree and every \
writeset, the current writeset, the era array, the held metadata snapshot and the reference \
count of every block against the metadata space map.",
    after_help = "Exit status: 0 clean (notes only), 1 errors or warnings found (warnings
are the non-fatal errors --ignore-non-fatal-errors lets pass), 2 usage error.

Examples:
  era_check /dev/vg/era-meta
  era_check -q era-meta.img && echo clean
  era_check --format json era-meta.img | jq -r '.findings[].message'
a live device, through its held snapshot:
  era_check --metadata-snap /dev/vg/era-meta
take, check and drop a snapshot of a live target:
  era_check --live era0"
)]
pub struct Args {
    /// INPUT, or --live with --checkpoint and --use-held-snapshot
    #[command(flatten)]
    pub source: super::Source,
    /// Fail only on errors: warnings (leaks, stray bits and similar) are still reported
    #[arg(long)]
    pub ignore_non_fatal_errors: bool,
    /// Check only the held metadata snapshot; the device is opened without O_EXCL so that a
    /// live target's metadata can be read
    ///
    /// The snapshot is the superblock at block 0's metadata_snap, its writeset tree and its
    /// era array. A superblock read with a bad checksum is read again a few times, as a live
    /// target may be rewriting it. Fails with "no current metadata snap" when none is held.
    #[arg(long, visible_alias = "metadata-snapshot", conflicts_with = "live")]
    pub metadata_snap: bool,
    /// Print nothing; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
    /// Check the superblock only
    #[arg(long)]
    pub super_block_only: bool,
    /// Report format: text (one line per finding on stderr) or json (one object on stdout)
    #[arg(long, value_enum, default_value_t = super::ReportFormat::Text)]
    pub format: super::ReportFormat,
}

parse_with_bare_version!(Args);

/// era_check on the process's arguments; usage errors end the process (exit status 2).
pub fn main() -> ExitCode {
    run(super::parse_with::<Args>(&|what| {
        // Best effort: the exit status and stderr tell the outcome anyway.
        let _ = findings_json(
            &mut std::io::stdout().lock(),
            None,
            &Problems::default(),
            Some(what),
        );
    }))
}

/// Checks what `args` name and reports the findings; the exit status tells the outcome.
pub fn run(args: Args) -> ExitCode {
    let quiet = args.quiet;
    let input = args.source.name();
    cli::run_quiet("era_check", quiet, || {
        let json = args.format == ReportFormat::Json;
        if json {
            cli::output::require_stdout()?;
        }
        let opts = options(&args);
        let checked = match &args.source.live {
            Some(device) => live::check_snapshot(device, &args.source.options(), opts)
                .map(|(problems, _)| problems)
                .map_err(era_files::live_error),
            None => era_files::open_era_input(&input, era_files::read_mode(args.metadata_snap))
                .map(|io| {
                    let bar = era_files::block_progress(&io, "checking metadata", quiet);
                    // A hidden bar still works out a rate at every step it is moved on.
                    let problems = match bar.is_hidden() {
                        true => check(&io, opts),
                        false => check(&cli::Counted::new(&io, &bar), opts),
                    };
                    bar.finish_and_clear();
                    problems
                }),
        };
        let problems = match checked {
            Ok(problems) => problems,
            // A script that asked for JSON gets it whatever happened.
            Err(e) if json => {
                findings_json(
                    &mut std::io::stdout().lock(),
                    Some(&input),
                    &Problems::default(),
                    Some(&error_message(&e)),
                )?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        match args.format {
            ReportFormat::Json => {
                findings_json(&mut std::io::stdout().lock(), Some(&input), &problems, None)?
            }
            ReportFormat::Text if !quiet => print_findings("era_check", &input, &problems),
            ReportFormat::Text => {}
        }
        let worst = problems.worst();
        if worst == Some(Severity::Error) && !quiet {
            cli::say("fatal errors in metadata");
        }
        Ok(if fails(worst, args.ignore_non_fatal_errors) {
            EXIT_ERROR
        } else {
            EXIT_OK
        })
    })
}

/// What the check reads, as the options ask.
fn options(args: &Args) -> CheckOptions {
    CheckOptions {
        super_block_only: args.super_block_only,
        metadata_snap: args.metadata_snap,
    }
}

/// Whether findings whose worst is `worst` fail the check: errors always, warnings unless
/// `--ignore-non-fatal-errors` lets them pass, notes never.
fn fails(worst: Option<Severity>, ignore_non_fatal_errors: bool) -> bool {
    match worst {
        Some(Severity::Error) => true,
        Some(Severity::Warning) => !ignore_non_fatal_errors,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parsed;

    #[test]
    fn warnings_fail_unless_ignored_and_errors_always_fail() {
        assert!(fails(Some(Severity::Error), false));
        assert!(fails(Some(Severity::Error), true));
        assert!(fails(Some(Severity::Warning), false));
        assert!(!fails(Some(Severity::Warning), true));
        assert!(!fails(Some(Severity::Note), false));
        assert!(!fails(None, false));
    }

    #[test]
    fn the_snapshot_options_reach_the_check() {
        let plain = options(&parsed(&["era_check", "meta.img"]));
        assert!(!plain.metadata_snap && !plain.super_block_only);
        let snap = options(&parsed(&[
            "era_check",
            "--metadata-snapshot",
            "--super-block-only",
            "meta.img",
        ]));
        assert!(snap.metadata_snap && snap.super_block_only);
    }
}
