//! era_metadata_size: its command line and its run.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use crate::cli::report::failure_json;
use crate::cli::{self, EXIT_OK};
use crate::era::metadata_size::{nr_blocks, size, SizeError, SizeUnits, Sizing};
use crate::json::Object;

/// `--format`: the size alone, or with its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SizeFormat {
    /// The size and its unit
    Text,
    /// The size and its parts, in metadata blocks
    Json,
}

/// The arguments of era_metadata_size.
#[derive(Parser)]
#[command(
    name = "era_metadata_size",
    version,
    about = "Size the metadata device of a dm-era target",
    long_about = "Print the size of the metadata device to create for an era target: room for \
the era array, the current writeset and WRITESETS archived writesets waiting to be digested \
into the era array, the writeset tree and the space map, plus what one metadata transaction \
copies (a second era array, as digestion or a held metadata snapshot keeps one) and the \
snapshot's superblock. The formula is in era_metadata_size(8).",
    after_help = "Exit status: 0 success, 1 impossible geometry, 2 usage error.

Examples:
  era_metadata_size --origin-size 1T --block-size 128 --writesets 8 --units mib
  size=$(era_metadata_size -n --origin-size 1T --block-size 128 \\
      --writesets 8 --units mib)
  lvcreate -n era-meta -L \"${size}m\" vg
  era_metadata_size --nr-blocks 2097152 --writesets 300 --format json"
)]
pub struct Args {
    /// Origin blocks (the last one may be partial)
    #[arg(long, value_name = "N", required_unless_present = "origin_size", conflicts_with_all = ["origin_size", "block_size"])]
    pub nr_blocks: Option<u64>,
    /// Origin size: bytes, or with a suffix s (sectors), k, m, g, t, p (powers of 1024)
    #[arg(long, value_name = "SIZE", requires = "block_size", value_parser = origin_size)]
    pub origin_size: Option<u64>,
    /// Origin block size in 512-byte sectors, as in the era table line
    #[arg(long, value_name = "SECTORS")]
    pub block_size: Option<u64>,
    /// Archived writesets that may wait to be digested at the same time (each checkpoint
    /// archives one; a live backup run with --checkpoint archives two)
    #[arg(long, value_name = "W")]
    pub writesets: u64,
    /// Units of the answer, rounded up
    #[arg(short, long, value_enum, default_value = "bytes")]
    pub units: SizeUnits,
    /// Print the number only
    #[arg(short = 'n', long)]
    pub numeric_only: bool,
    /// text: the size; json: the size and its parts, in metadata blocks
    #[arg(long, value_enum, default_value = "text")]
    pub format: SizeFormat,
    /// Print nothing on stderr; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
}

parse_with_bare_version!(Args);

/// A usage error's JSON object, when `--format json` was asked.
fn usage_json(what: &str) {
    // Best effort: the exit status and stderr tell the outcome anyway.
    let _ = failure_json(|_| Ok(()), what);
}

/// era_metadata_size on the process's arguments; usage errors end the process (exit
/// status 2).
pub fn main() -> ExitCode {
    let args = super::parse_with::<Args>(&usage_json);
    let n = origin_blocks(&args).unwrap_or_else(|| {
        super::usage_error_with::<Args>(
            "give --nr-blocks, or --origin-size with --block-size",
            &usage_json,
        )
    });
    run(&args, n)
}

/// The origin's block count the options give, or the error of a geometry no target can
/// have; `None` when they give neither `--nr-blocks` nor both `--origin-size` and
/// `--block-size` (a usage error).
pub fn origin_blocks(args: &Args) -> Option<Result<u64, SizeError>> {
    match (args.nr_blocks, args.origin_size, args.block_size) {
        (Some(n), _, _) => Some(Ok(n)),
        (None, Some(origin), Some(bs)) => Some(nr_blocks(origin, bs)),
        _ => None,
    }
}

/// Prints the size of the metadata device for `n` origin blocks (or why there is none);
/// the exit status tells the outcome.
pub fn run(args: &Args, n: Result<u64, SizeError>) -> ExitCode {
    cli::run("era_metadata_size", || {
        cli::output::require_stdout()?;
        let s = match n.and_then(|n| size(n, args.writesets)) {
            Ok(s) => s,
            // A script that asked for JSON gets it whatever happened.
            Err(e) if args.format == SizeFormat::Json => {
                failure_json(|_| Ok(()), &e.to_string())?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        writeln!(std::io::stdout().lock(), "{}", answer(args, &s)?)?;
        Ok(EXIT_OK)
    })
}

/// The line printed: the size in the units asked, with or without their name, or the JSON
/// object with the size and its parts.
fn answer(args: &Args, s: &Sizing) -> std::io::Result<String> {
    let units = args.units;
    let value = s.in_units(units);
    Ok(match args.format {
        SizeFormat::Text if args.numeric_only => format!("{value}"),
        SizeFormat::Text => format!("{value} {}", units.name()),
        SizeFormat::Json => {
            let mut json = Vec::new();
            Object::begin(&mut json)?
                .field("nr_blocks", s.nr_blocks)?
                .field("writesets", s.writesets)?
                .field("size", value)?
                .field("units", units.name())?
                .field("metadata_blocks", s.total)?
                .field("committed_blocks", s.committed)?
                .field("headroom_blocks", s.headroom)?
                .field("era_array_blocks", s.era_array)?
                .field("writeset_blocks", s.writeset)?
                .field("writeset_tree_blocks", s.writeset_tree)?
                .field("space_map_blocks", s.space_map)?
                .end()?;
            String::from_utf8_lossy(&json).into_owned()
        }
    })
}

/// `--origin-size`, read by clap so that a value it cannot read is a usage error (exit 2),
/// like every other value no tool can parse.
fn origin_size(s: &str) -> Result<u64, String> {
    crate::era::metadata_size::parse_size(s).map_err(|_| {
        "not a size: give bytes, or a number with s (sectors), k, m, g, t or p".to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parsed;

    /// A sizing of 3 blocks of 4096 bytes, with distinct parts.
    const SIZING: Sizing = Sizing {
        nr_blocks: 100,
        writesets: 2,
        era_array: 4,
        writeset: 5,
        writeset_tree: 6,
        space_map: 7,
        committed: 1,
        headroom: 2,
        total: 3,
    };

    #[test]
    fn the_block_count_is_given_or_worked_out_from_the_origin() {
        let given = parsed(&["s", "--nr-blocks", "2097152", "--writesets", "1"]);
        assert_eq!(origin_blocks(&given), Some(Ok(2097152)));
        // 1 MiB of 128-sector (64 KiB) blocks.
        let line = [
            "s",
            "--origin-size",
            "1m",
            "--block-size",
            "128",
            "--writesets",
            "1",
        ];
        assert_eq!(origin_blocks(&parsed(&line)), Some(Ok(16)));
        let line = [
            "s",
            "--origin-size",
            "1m",
            "--block-size",
            "7",
            "--writesets",
            "1",
        ];
        assert_eq!(
            origin_blocks(&parsed(&line)),
            Some(Err(SizeError::BlockSize(7)))
        );
    }

    /// The answer to the command line of `nr_blocks` 1 and 1 writeset with `options`.
    fn answer_with(options: &[&str]) -> String {
        let mut line = vec!["s", "--nr-blocks", "1", "--writesets", "1"];
        line.extend(options);
        answer(&parsed(&line), &SIZING).unwrap()
    }

    #[test]
    fn the_answer_is_the_size_in_the_units_asked() {
        assert_eq!(answer_with(&["--units", "kib"]), "12 KiB");
        assert_eq!(answer_with(&["-u", "sectors", "-n"]), "24");
        assert_eq!(answer_with(&[]), "12288 bytes");
    }

    #[test]
    fn the_json_answer_gives_the_parts() {
        assert_eq!(
            answer_with(&["--format", "json"]),
            "{\"nr_blocks\":100,\"writesets\":2,\"size\":12288,\"units\":\"bytes\",\
             \"metadata_blocks\":3,\"committed_blocks\":1,\"headroom_blocks\":2,\
             \"era_array_blocks\":4,\"writeset_blocks\":5,\"writeset_tree_blocks\":6,\
             \"space_map_blocks\":7}"
        );
    }
}
