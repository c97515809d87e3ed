//! era_invalidate: lists the origin blocks written since a given era.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use era_log_tools::cli::{self, EXIT_OK};
use era_log_tools::era::invalidate::written_since;
use era_log_tools::era::invalidate_output::{write, write_live, Format, Units};
use era_log_tools::era::live::{self, LiveOptions};
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
  dmsetup message era0 0 drop_metadata_snap
  era_invalidate --live era0 --checkpoint --written-since 5 --units bytes   # all of the above

--live prints JSON unless --format says otherwise; its next_written_since is the value for
the next incremental run."
)]
struct Args {
    /// Metadata device or file
    #[arg(
        value_name = "INPUT",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
    input: Option<PathBuf>,
    /// Read the live era target DM_NAME (a device-mapper name or its /dev path) in one step:
    /// its metadata device comes from its table; a metadata snapshot is taken, read and
    /// dropped
    #[arg(long, value_name = "DM_NAME", conflicts_with = "metadata_snapshot")]
    live: Option<String>,
    /// With --live: send checkpoint first, so that the next run starts from a new era
    #[arg(long, requires = "live", conflicts_with = "input")]
    checkpoint: bool,
    /// With --live: read the snapshot someone else holds (and leave it held) instead of
    /// refusing
    #[arg(long, requires = "live", conflicts_with = "input")]
    use_held_snapshot: bool,
    /// List the blocks written in this era or later (0 lists every block)
    #[arg(long, value_name = "ERA")]
    written_since: u32,
    /// Read the held metadata snapshot of a live target (the device is opened without O_EXCL)
    #[arg(long, visible_alias = "metadata-snap")]
    metadata_snapshot: bool,
    /// Write to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Output format [default: xml, json with --live]
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Units of the ranges (text and json only; xml is always in blocks)
    #[arg(long, value_enum, default_value = "blocks")]
    units: UnitsArg,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let format = match args.format {
        None if args.live.is_some() => Format::Json,
        None | Some(FormatArg::Xml) => Format::Xml,
        Some(FormatArg::Text) => Format::Text,
        Some(FormatArg::Json) => Format::Json,
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
    if let Some(device) = &args.live {
        return cli::run("era_invalidate", || {
            let opts = LiveOptions {
                checkpoint: args.checkpoint,
                use_held_snapshot: args.use_held_snapshot,
                handle_signals: true,
            };
            let (set, info) = live::invalidate(device, &opts, args.written_since)?;
            for w in &set.warnings {
                eprintln!("era_invalidate: {device}: {w}");
            }
            let mut out = cli::output(args.output.as_deref(), Path::new(device))?;
            write_live(&mut out, &set, format, units, args.written_since, &info)?;
            if format != Format::Json {
                eprintln!(
                    "era_invalidate: {device}: read through metadata snapshot {}; next \
                     --written-since {}",
                    info.snapshot_root,
                    info.next_written_since()
                );
            }
            Ok(EXIT_OK)
        });
    }
    let input = args.input.unwrap_or_default();
    cli::run("era_invalidate", || {
        let mode = if args.metadata_snapshot {
            OpenMode::ReadShared
        } else {
            OpenMode::ReadExclusive
        };
        let io = cli::open_era_input(&input, mode)?;
        let name = input.display();
        let view = View::open(&io, args.metadata_snapshot).with_context(|| name.to_string())?;
        let set =
            written_since(&io, &view, args.written_since).with_context(|| name.to_string())?;
        for w in &set.warnings {
            eprintln!("era_invalidate: {name}: {w}");
        }
        let mut out = cli::output(args.output.as_deref(), &input)?;
        write(
            &mut out,
            &set,
            format,
            units,
            view.sb.data_block_size,
            args.written_since,
        )?;
        Ok(EXIT_OK)
    })
}
