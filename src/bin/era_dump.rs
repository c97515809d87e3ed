//! era_dump: writes dm-era metadata as XML.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::era::dump::{dump, DumpError, DumpOptions};
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
  era_dump --metadata-snap /dev/vg/era-meta   # a live device, through its held snapshot"
)]
struct Args {
    /// Metadata device or file
    #[arg(value_name = "INPUT")]
    input: PathBuf,
    /// Fold every writeset into the era array (newest writeset wins) and print only the
    /// era array
    #[arg(long)]
    logical: bool,
    /// Dump the held metadata snapshot; the device is opened without O_EXCL so that a live
    /// target's metadata can be read
    #[arg(long, visible_alias = "metadata-snapshot")]
    metadata_snap: bool,
    /// Write the XML to FILE instead of stdout (- for stdout); a regular FILE is replaced
    /// only when the dump succeeds
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
    cli::run("era_dump", || {
        let mode = if args.metadata_snap {
            OpenMode::ReadShared
        } else {
            OpenMode::ReadExclusive
        };
        let io = cli::open_era_input(&args.input, mode)?;
        let mut out = cli::Output::create(args.output.as_deref(), &[&args.input])?;
        let opts = DumpOptions {
            logical: args.logical,
            repair: args.repair,
            metadata_snap: args.metadata_snap,
        };
        // A failed dump leaves a previous file of the same name as it was.
        match dump(&io, &opts, &mut out) {
            Ok(problems) => {
                out.commit()?;
                cli::report_problems("era_dump", &args.input, &problems);
                Ok(EXIT_OK)
            }
            Err(e @ DumpError::Metadata(_)) => {
                Err(anyhow::Error::new(e).context(args.input.display().to_string()))
            }
            Err(e) => Err(anyhow::Error::new(e)),
        }
    })
}
