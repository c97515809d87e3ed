//! era_invalidate: lists the origin blocks written since a given era.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::era::invalidate::written_since;
use era_log_tools::era::invalidate_output::{write, Format, Units};
use era_log_tools::era::view::View;
use era_log_tools::pdata::io::OpenMode;

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Xml,
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum UnitsArg {
    Blocks,
    Sectors,
    Bytes,
}

#[derive(Parser)]
#[command(
    name = "era_invalidate",
    version,
    about = "List the origin blocks written since an era",
    long_about = "List the origin blocks written in era N or later: the blocks a cache must \
invalidate, or an incremental backup must copy. Reads the era array, the archived writesets \
and, from block 0, the current writeset, so blocks written in the current era of a live or \
crashed target are included. With --metadata-snapshot the held metadata snapshot of a live \
target is read instead; it covers the eras before the one current when it was taken.",
    after_help = "Output (end-exclusive ranges):
  xml   <blocks><range begin=\"B\" end=\"E\"/><block block=\"B\"/></blocks>, as thin-provisioning-tools
  text  one \"BEGIN END\" line per run
  json  {\"written_since\":N,\"units\":…,\"block_size_sectors\":…,\"nr_blocks\":…,\"ranges\":[{\"begin\":B,\"end\":E}]}
The last range may extend past the end of the origin when its last block is partial.

Examples:
  era_invalidate --written-since 5 /dev/vg/era-meta
  dmsetup message era0 0 take_metadata_snap
  era_invalidate --metadata-snapshot --written-since 5 --format text --units bytes /dev/vg/era-meta
  dmsetup message era0 0 drop_metadata_snap"
)]
struct Args {
    /// Metadata device or file
    #[arg(value_name = "INPUT")]
    input: PathBuf,
    /// List the blocks written in this era or later (0 lists every block)
    #[arg(long, value_name = "ERA")]
    written_since: u32,
    /// Read the held metadata snapshot of a live target (the device is opened without O_EXCL)
    #[arg(long, visible_alias = "metadata-snap")]
    metadata_snapshot: bool,
    /// Write to FILE instead of stdout (- for stdout); a regular FILE is replaced only when
    /// the run succeeds
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value = "xml")]
    format: FormatArg,
    /// Units of the ranges (text and json only; xml is always in blocks)
    #[arg(long, value_enum, default_value = "blocks")]
    units: UnitsArg,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let format = match args.format {
        FormatArg::Xml => Format::Xml,
        FormatArg::Text => Format::Text,
        FormatArg::Json => Format::Json,
    };
    let units = match args.units {
        UnitsArg::Blocks => Units::Blocks,
        UnitsArg::Sectors => Units::Sectors,
        UnitsArg::Bytes => Units::Bytes,
    };
    if format == Format::Xml && units != Units::Blocks {
        clap::Command::new("era_invalidate")
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--units sectors|bytes needs --format text or json",
            )
            .exit();
    }
    cli::run("era_invalidate", || {
        let mode = if args.metadata_snapshot {
            OpenMode::ReadShared
        } else {
            OpenMode::ReadExclusive
        };
        let io = cli::open_era_input(&args.input, mode)?;
        let name = args.input.display();
        let view = View::open(&io, args.metadata_snapshot).with_context(|| name.to_string())?;
        let set =
            written_since(&io, &view, args.written_since).with_context(|| name.to_string())?;
        for w in &set.warnings {
            cli::say(&format!("era_invalidate: {name}: {w}"));
        }
        let mut out = cli::Output::create(args.output.as_deref(), &[&args.input])?;
        write(
            &mut out,
            &set,
            format,
            units,
            view.sb.data_block_size,
            args.written_since,
        )?;
        out.commit()?;
        Ok(EXIT_OK)
    })
}
