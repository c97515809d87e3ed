//! era_dump: writes dm-era metadata as XML.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::era::dump::{dump, DumpError, DumpOptions};
use era_log_tools::era::live::{self, LiveOptions};
use era_log_tools::pdata::io::OpenMode;

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
  era_dump --logical era-meta.img          # the era of every block, writesets folded in
  era_dump --repair damaged.img > salvaged.xml && era_restore -i salvaged.xml -o new.img
  era_dump --metadata-snap /dev/vg/era-meta   # a live device, through its held snapshot
  era_dump --live era0 > era.xml              # take, dump and drop a snapshot of a live target"
)]
struct Args {
    /// Metadata device or file
    #[arg(
        value_name = "INPUT",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
    input: Option<PathBuf>,
    /// Dump the live era target DM_NAME (a device-mapper name or its /dev path) through a
    /// metadata snapshot taken and dropped for this run
    #[arg(long, value_name = "DM_NAME", conflicts_with = "metadata_snap")]
    live: Option<String>,
    /// With --live: send checkpoint before taking the snapshot
    #[arg(long, requires = "live", conflicts_with = "input")]
    checkpoint: bool,
    /// With --live: dump the snapshot someone else holds (and leave it held) instead of
    /// refusing
    #[arg(long, requires = "live", conflicts_with = "input")]
    use_held_snapshot: bool,
    /// Fold every writeset into the era array (newest writeset wins) and print only the
    /// era array
    #[arg(long)]
    logical: bool,
    /// Dump the held metadata snapshot; the device is opened without O_EXCL so that a live
    /// target's metadata can be read
    #[arg(long, visible_alias = "metadata-snapshot")]
    metadata_snap: bool,
    /// Write the XML to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Skip what cannot be read, report it on stderr, and still write XML that era_restore
    /// accepts (unreadable writeset words count as written, unreadable era-array entries
    /// as the current era)
    #[arg(short, long)]
    repair: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let input = args
        .input
        .clone()
        .unwrap_or_else(|| PathBuf::from(args.live.clone().unwrap_or_default()));
    cli::run("era_dump", || {
        let mode = if args.metadata_snap {
            OpenMode::ReadShared
        } else {
            OpenMode::ReadExclusive
        };
        let opts = DumpOptions {
            logical: args.logical,
            repair: args.repair,
            metadata_snap: args.metadata_snap,
        };
        let file = match &args.live {
            Some(_) => None,
            None => Some(cli::open_era_input(&input, mode)?),
        };
        let mut out = cli::output(args.output.as_deref(), &input)?;
        let result = if let Some(io) = &file {
            dump(io, &opts, &mut out).map_err(|e| match e {
                e @ DumpError::Metadata(_) => {
                    anyhow::Error::new(e).context(input.display().to_string())
                }
                e => anyhow::Error::new(e),
            })
        } else {
            let live_opts = LiveOptions {
                checkpoint: args.checkpoint,
                use_held_snapshot: args.use_held_snapshot,
                handle_signals: true,
            };
            let device = args.live.as_deref().unwrap_or_default();
            live::dump_snapshot(device, &live_opts, &opts, &mut out)
                .map(|(problems, _)| problems)
                .map_err(anyhow::Error::new)
        };
        drop(out);
        if let (Err(_), Some(path)) = (&result, &args.output) {
            // A partial dump must not be mistaken for a whole one.
            let _ = std::fs::remove_file(path);
        }
        let problems = result?;
        cli::report_problems("era_dump", &input, &problems);
        Ok(EXIT_OK)
    })
}
