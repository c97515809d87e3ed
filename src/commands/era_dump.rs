//! era_dump: its command line and its run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use super::era_files;
use crate::cli::report::{file_error, print_findings};
use crate::cli::{self, EXIT_OK};
use crate::era::dump::{dump, DumpError, DumpOptions};
use crate::era::live;

/// The arguments of era_dump.
#[derive(Parser)]
#[command(
    name = "era_dump",
    version,
    about = "Dump dm-era metadata as XML",
    long_about = "Dump dm-era metadata as XML: the superblock, every writeset (one <bit> per \
origin block) in ascending era, then the era array. The output is byte for byte what \
thin-provisioning-tools 1.3.3 writes, and era_restore reads it back.",
    after_help = "Exit status: 0 success, 1 error, 2 usage error.

Examples:
  era_dump /dev/vg/era-meta > era.xml
  era_dump -o era.xml era-meta.img
the era of every block, writesets folded in:
  era_dump --logical era-meta.img
salvage damaged metadata into a new device or file:
  era_dump --repair damaged.img > salvaged.xml &&
    era_restore -i salvaged.xml -o new.img
a live device, through its held snapshot:
  era_dump --metadata-snap /dev/vg/era-meta
take, dump and drop a snapshot of a live target:
  era_dump --live era0 -o era0.xml"
)]
pub struct Args {
    /// INPUT, or --live with --checkpoint and --use-held-snapshot
    #[command(flatten)]
    pub source: super::Source,
    /// Fold every writeset into the era array (newest writeset wins) and print only the
    /// era array
    ///
    /// Each block gets the era of the newest writeset that marks it, or else its era-array
    /// value: the era array as it will be once the kernel has digested every writeset.
    /// (thin-provisioning-tools 1.3.3 attributes bit j of 64-bit word i to block 32i+j here;
    /// this tool does not.)
    #[arg(long)]
    pub logical: bool,
    /// Dump the held metadata snapshot; the device is opened without O_EXCL so that a live
    /// target's metadata can be read
    ///
    /// Only the snapshot's writeset tree and era array are read (its copies of the current
    /// writeset and of the space map are stale). Fails with "no current metadata snap" when
    /// none is held.
    #[arg(long, visible_alias = "metadata-snapshot", conflicts_with = "live")]
    pub metadata_snap: bool,
    /// Write the XML to FILE instead of stdout
    ///
    /// FILE may not be the input. A regular FILE is written under a temporary name beside it
    /// and renamed over it only on success, so a failed run leaves it as it was; a device,
    /// FIFO or /dev/stdout is written in place. - is stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Skip what cannot be read, report it on stderr, and still write XML that era_restore
    /// accepts (unreadable writeset words count as written, unreadable era-array entries
    /// as the current era)
    ///
    /// Era-array values above the current era are lowered to it, and writesets that cannot
    /// be restored (a repeated era, an era above the current one, a zero root) are left out.
    /// Marking too much is safe for every user of era data (a backup copies a block too many,
    /// a cache drops a block too many); marking too little is not. The superblock must be
    /// valid.
    #[arg(short, long)]
    pub repair: bool,
    /// Print nothing on stderr; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
}

parse_with_bare_version!(Args, main = run);

/// Writes the XML of what `args` name; the exit status tells the outcome.
pub fn run(args: Args) -> ExitCode {
    let input = args.source.name();
    cli::run_quiet("era_dump", args.quiet, || {
        let opts = options(&args);
        let file = match &args.source.live {
            Some(_) => None,
            None => Some(era_files::open_era_input(
                &input,
                era_files::read_mode(args.metadata_snap),
            )?),
        };
        let mut out = cli::Output::create(args.output.as_deref(), &[&input])?;
        // A failed dump leaves a previous file of the same name as it was.
        let problems = match (&file, &args.source.live) {
            (Some(io), _) => {
                let bar = era_files::block_progress(io, "dumping metadata", !shows_bar(&args));
                let r = dump(&cli::Counted::new(io, &bar), &opts, &mut out);
                bar.finish_and_clear();
                r.map_err(|e| match e {
                    e @ DumpError::Metadata(_) => file_error(&input, e),
                    e => anyhow::Error::new(e),
                })?
            }
            (None, device) => {
                let device = device.as_deref().unwrap_or_default();
                live::dump_snapshot(device, &args.source.options(), &opts, &mut out)
                    .map_err(era_files::live_error)?
                    .0
            }
        };
        out.commit()?;
        if !args.quiet {
            print_findings("era_dump", &input, &problems);
        }
        Ok(EXIT_OK)
    })
}

/// How the metadata is read, as the options ask.
fn options(args: &Args) -> DumpOptions {
    DumpOptions {
        logical: args.logical,
        repair: args.repair,
        metadata_snap: args.metadata_snap,
    }
}

/// Whether a progress bar may show: only when the XML goes to a file, as on stdout it would
/// cut into it, and never with -q.
fn shows_bar(args: &Args) -> bool {
    let to_file = args
        .output
        .as_deref()
        .is_some_and(|p| !cli::output::is_stdout(p));
    to_file && !args.quiet
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parsed;

    #[test]
    fn a_bar_shows_only_when_the_xml_goes_to_a_file_and_not_quietly() {
        for (line, shows) in [
            (&["era_dump", "-o", "era.xml", "m"][..], true),
            (&["era_dump", "m"], false),
            (&["era_dump", "-o", "-", "m"], false),
            (&["era_dump", "-q", "-o", "era.xml", "m"], false),
        ] {
            assert_eq!(shows_bar(&parsed(line)), shows, "{line:?}");
        }
    }

    #[test]
    fn the_reading_options_reach_the_dump() {
        let o = options(&parsed(&[
            "era_dump",
            "--logical",
            "-r",
            "--metadata-snap",
            "m",
        ]));
        assert!(o.logical && o.repair && o.metadata_snap);
        let o = options(&parsed(&["era_dump", "m"]));
        assert!(!o.logical && !o.repair && !o.metadata_snap);
    }
}
