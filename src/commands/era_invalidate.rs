//! era_invalidate: its command line and its run.

use std::cell::Cell;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use super::era_files;
use crate::cache::invalidate::Matcher;
use crate::cache::live::{open_metadata, CacheLiveError, CacheOptions, LiveCache, Neighbour};
use crate::cache::reader::CacheMetadata;
use crate::cli::open::open_device;
use crate::cli::report::{error_message, failure_json, finding_line, OnFileExt};
use crate::cli::{self, EXIT_OK};
use crate::dm::ioctl::Control;
use crate::dm::{DeviceMapper, DmDevice, DmError};
use crate::era::invalidate::listing::{write_live, Format, Offline, StreamError, Units};
use crate::era::invalidate::ListError;
use crate::era::live;
use crate::era::reader::EraMetadata;
use crate::pdata::io::OpenMode;

/// What to do about cache metadata someone holds: the offline listing reads an inactive
/// cache's.
const CACHE_BUSY: &str = "a cache target holds it: --cache-metadata reads the metadata of a \
                          cache no target is using";

value_enum! {
    /// `--format`: how the blocks are listed.
    Format {
        Xml => "xml",
            "blocks element of range and block elements, as thin-provisioning-tools writes it";
        Text => "text", "One \"BEGIN END\" line per run";
        Json => "json",
            "One object: written_since, units, block_size_sectors, nr_blocks and ranges, a \
             list of {\"begin\":B,\"end\":E}";
    }
}

value_enum! {
    /// `--units`: the unit of text and JSON ranges.
    Units {
        Blocks => "blocks", "Origin blocks";
        Sectors => "sectors", "512-byte sectors";
        Bytes => "bytes", "Bytes";
    }
}

/// The arguments of era_invalidate.
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
  xml   <blocks><range begin=\"B\" end=\"E\"/><block block=\"B\"/></blocks>,
        as thin-provisioning-tools
  text  one \"BEGIN END\" line per run
  json  {\"written_since\":N,\"units\":…,\"block_size_sectors\":…,
         \"nr_blocks\":…,\"past_current_era\":false,
         \"ranges\":[{\"begin\":B,\"end\":E}]}
The last range may extend past the end of the origin when its last block is
partial. An era past the metadata's current era lists nothing and is warned
about.

Examples:
  era_invalidate --written-since 5 /dev/vg/era-meta
a live target, by hand:
  dmsetup message era0 0 take_metadata_snap
  era_invalidate --metadata-snapshot --written-since 5 \\
      --format text --units bytes /dev/vg/era-meta
  dmsetup message era0 0 drop_metadata_snap
all of the above in one step:
  era_invalidate --live era0 --checkpoint --written-since 5 --units bytes
the cache blocks to invalidate after the origin was rolled back under a cache:
  era_invalidate --written-since 5 --cache-metadata /dev/vg/cache-meta \\
      --messages /dev/vg/era-meta
and in a live cache, in passthrough mode, stacked on the era target:
  era_invalidate --live era0 --written-since 5 --cache cache0

--live prints JSON unless --format says otherwise; its next_written_since is the
value for the next incremental run."
)]
pub struct Args {
    /// INPUT, or --live with --checkpoint and --use-held-snapshot
    #[command(flatten)]
    pub source: super::Source,
    /// List the blocks written in this era or later (0 lists every block)
    #[arg(long, value_name = "ERA")]
    pub written_since: u32,
    /// Read the held metadata snapshot of a live target (the device is opened without O_EXCL)
    #[arg(long, visible_alias = "metadata-snap", conflicts_with = "live")]
    pub metadata_snapshot: bool,
    /// Write to FILE instead of stdout
    ///
    /// FILE may not be the input. A regular FILE is written under a temporary name beside it
    /// and renamed over it only on success, so a failed run leaves it as it was; a device,
    /// FIFO or /dev/stdout is written in place. - is stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output format [default: xml, json with --live]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Units of the ranges (text and json only; xml is always in blocks)
    ///
    /// Sectors and bytes come from the block size recorded in the superblock. The last range
    /// may extend past the end of the origin when its last block is partial.
    #[arg(long, value_enum, default_value = "blocks")]
    pub units: Units,
    /// List the blocks of this dm-cache to invalidate instead of origin blocks
    ///
    /// CACHE_META is the metadata of a dm-cache stacked with the era target on the same
    /// origin (with the same sector numbering), no target using it. Listed: every cache block
    /// that holds origin data written in era N or later (any of its sectors: block sizes may
    /// differ), the blocks to invalidate after the origin was rolled back under the cache to
    /// a snapshot of era N. As text (BEGIN END ranges of cache blocks, end exclusive), json
    /// (a cache object: its block size and blocks, the ranges, how many blocks, and how many
    /// written origin blocks it did not hold), or --messages.
    #[arg(long, value_name = "CACHE_META", conflicts_with = "live")]
    pub cache_metadata: Option<PathBuf>,
    /// With --cache-metadata: print the invalidate_cblocks messages, one a line, at most
    /// 1000 ranges each, for `dmsetup message CACHE 0 LINE` (the cache in passthrough mode)
    #[arg(long, requires = "cache_metadata", conflicts_with = "format")]
    pub messages: bool,
    /// With --live: invalidate, in the live dm-cache CACHE, the cache blocks that hold blocks
    /// written in era N or later
    ///
    /// For the origin rolled back under the cache to a snapshot of era N. CACHE (a
    /// device-mapper name or its node) must be stacked directly on the era target or under
    /// it, in passthrough mode (the only one in which the kernel invalidates), its metadata
    /// read-write and not flagged needs_check; it is refused otherwise, with nothing changed.
    /// The era target's list is read through a snapshot as --live reads it; the cache is
    /// then suspended while its mapping is read (its I/O waits meanwhile), resumed, sent
    /// invalidate_cblocks for every cache block that holds a written sector (at most 1000
    /// ranges a message), suspended once more to commit, its mapping read again to show that
    /// no cache block holds a written block any more, and resumed: on every way out, SIGINT,
    /// SIGTERM and SIGHUP included. Cache blocks that hold no written block stay cached.
    #[arg(long, value_name = "CACHE", requires = "live")]
    pub cache: Option<String>,
    /// With --cache: read and match, list what would be invalidated, send nothing (the cache
    /// is still suspended while its mapping is read)
    #[arg(long, requires = "cache")]
    pub dry_run: bool,
    /// Print nothing on stderr; report through the exit status only
    #[arg(short, long)]
    pub quiet: bool,
}

parse_with_bare_version!(Args);

/// era_invalidate on the process's arguments; usage errors end the process (exit status 2).
pub fn main() -> ExitCode {
    let args = super::parse_with::<Args>(&|what| {
        // Best effort: the exit status and stderr tell the outcome anyway.
        let _ = failure_json(|o| o.field("written_since", None::<u32>).map(drop), what);
    });
    let plan = plan(&args).unwrap_or_else(|msg| super::usage_error::<Args>(msg));
    run(&args, plan)
}

/// What the options ask for, checked against each other: how the blocks are listed, and in
/// which unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// `--format`, or its default: XML, JSON for `--live`, text for `--cache-metadata`.
    pub format: Format,
    /// `--units`.
    pub units: Units,
    /// With `--cache-metadata` or `--cache`: how the cache blocks are listed.
    pub cache: Option<CacheList>,
}

/// How the cache blocks to invalidate are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheList {
    /// `BEGIN END` lines.
    Text,
    /// era_invalidate's JSON object with a `cache` object.
    Json,
    /// `invalidate_cblocks` messages.
    Messages,
}

/// The plan `args` ask for, or the usage error they make: XML is always in blocks.
pub fn plan(args: &Args) -> Result<Plan, &'static str> {
    let format = match args.format {
        Some(format) => format,
        None if args.source.live.is_some() => Format::Json,
        None if args.cache_metadata.is_some() => Format::Text,
        None => Format::Xml,
    };
    if format == Format::Xml && args.units != Units::Blocks {
        return Err("--units sectors|bytes needs --format text or json");
    }
    // clap does not hold --messages to its `requires` when --live, which --cache-metadata
    // conflicts with, is given.
    if args.messages && args.cache_metadata.is_none() {
        return Err("--messages prints the messages for --cache-metadata; --cache sends them");
    }
    let lists_cache = args.cache_metadata.is_some() || args.cache.is_some();
    let cache = match (lists_cache, format) {
        (false, _) => None,
        (true, _) if args.units != Units::Blocks => {
            return Err("--units applies to origin blocks; cache blocks are listed by number")
        }
        (true, _) if args.messages => Some(CacheList::Messages),
        (true, Format::Text) => Some(CacheList::Text),
        (true, Format::Json) => Some(CacheList::Json),
        (true, Format::Xml) if args.cache.is_some() => {
            return Err("--cache lists cache blocks as json or text")
        }
        (true, Format::Xml) => {
            return Err("--cache-metadata lists cache blocks as text, json or --messages")
        }
    };
    Ok(Plan {
        format,
        units: args.units,
        cache,
    })
}

/// Lists the blocks written since the era `args` give, as `plan` says; the exit status
/// tells the outcome.
pub fn run(args: &Args, plan: Plan) -> ExitCode {
    // Set once the output exists: a failure before it still owes a script its JSON.
    let started = Cell::new(false);
    cli::run_quiet("era_invalidate", args.quiet, || {
        let result = match (&args.source.live, &args.cache_metadata, plan.cache) {
            (Some(device), _, Some(list)) => match &args.cache {
                Some(cache) => live_cache_run(args, list, device, cache, &started),
                None => live_run(args, plan, device, &started),
            },
            (Some(device), _, None) => live_run(args, plan, device, &started),
            (None, Some(cache), Some(list)) => cache_run(args, cache, list, &started),
            _ => offline_run(args, plan, &started),
        };
        if let Err(e) = &result {
            let to_stdout = args.output.as_deref().map_or(true, cli::output::is_stdout);
            if plan.format == Format::Json && to_stdout && !started.get() {
                cli::output::require_stdout()?;
                failure_json(
                    |o| o.field("written_since", args.written_since).map(drop),
                    &error_message(e),
                )?;
            }
        }
        result
    })
}

/// A line on stderr, unless -q.
fn say(args: &Args, line: &str) {
    if !args.quiet {
        cli::say(line)
    }
}

/// The run on a live target, through a snapshot of its own.
fn live_run(args: &Args, plan: Plan, device: &str, started: &Cell<bool>) -> anyhow::Result<u8> {
    let (set, info) = live::invalidate(device, &args.source.options(), args.written_since)
        .map_err(era_files::live_error)?;
    for w in &set.warnings {
        say(args, &finding_line("era_invalidate", device, w));
    }
    let mut out = cli::Output::create(args.output.as_deref(), &[Path::new(device)])?;
    started.set(true);
    write_live(
        &mut out,
        &set,
        plan.format,
        plan.units,
        args.written_since,
        &info,
        |_| Ok(()),
    )?;
    out.commit()?;
    if plan.format != Format::Json {
        say(
            args,
            &format!(
                "era_invalidate: {device}: note: metadata snapshot {}: read and dropped; \
                 next --written-since {}",
                info.snapshot_root,
                info.next_written_since()
            ),
        );
    }
    Ok(EXIT_OK)
}

/// The run that invalidates, in a live cache, the blocks written since the era on a live
/// era target (`--live` with `--cache`).
fn live_cache_run(
    args: &Args,
    list: CacheList,
    device: &str,
    cache_name: &str,
    started: &Cell<bool>,
) -> anyhow::Result<u8> {
    // A wrong -o is refused before the cache is touched: the invalidation cannot be undone,
    // and its answer must have somewhere to go.
    let mut out = cli::Output::create(
        args.output.as_deref(),
        &[Path::new(device), Path::new(cache_name)],
    )?;
    let era_fault = |e: DmError| {
        era_files::live_error(live::LiveError {
            device: device.to_string(),
            fault: e.into(),
        })
    };
    let dm = Control::open().map_err(era_fault)?;
    let era_dev = DmDevice::parse(device).map_err(era_fault)?;
    let cache_dev =
        DmDevice::parse(cache_name).map_err(|e| cli::report::file_error(cache_name, e))?;
    // The stacking is checked before the era target is touched: its own number and origin.
    let era_table = live::target::EraTable::from_lines(&dm.table(&era_dev).map_err(era_fault)?)
        .map_err(|e| cli::report::file_error(device, e))?;
    let neighbour = Neighbour {
        name: device.to_string(),
        dev: dm.info(&era_dev).map_err(era_fault)?.dev,
        origin: era_table.origin,
    };
    let cache_error = |e: CacheLiveError| cli::report::file_error(&e.device, e.what());
    let cache = LiveCache::inspect(&dm, &cache_dev, &neighbour).map_err(cache_error)?;
    let (set, info) = live::invalidate(device, &args.source.options(), args.written_since)
        .map_err(era_files::live_error)?;
    for w in &set.warnings {
        say(args, &finding_line("era_invalidate", device, w));
    }
    let sectors = u64::from(info.table.block_size);
    let feed = |m: &mut Matcher<'_>| {
        set.runs()
            .try_for_each(|(b, e)| m.written(b * sectors..e * sectors))
    };
    let opts = CacheOptions {
        dry_run: args.dry_run,
        handle_signals: true,
    };
    let outcome = cache
        .invalidate(&dm, &neighbour, &opts, &open_metadata, &feed)
        .map_err(cache_error)?;
    let inv = &outcome.invalidation;
    started.set(true);
    match list {
        CacheList::Json => write_live(
            &mut out,
            &set,
            Format::Json,
            Units::Blocks,
            args.written_since,
            &info,
            |o| {
                o.raw("cache", |w| {
                    inv.write_json(w, ("device", cache_name), |c| {
                        c.field("dry_run", args.dry_run)?
                            .field("messages", outcome.messages)?
                            .field("verified", !args.dry_run)?;
                        Ok(())
                    })
                })?;
                Ok(())
            },
        )?,
        CacheList::Text | CacheList::Messages => inv.write_text(&mut out)?,
    }
    out.commit()?;
    if list != CacheList::Json {
        let done = if args.dry_run {
            "would be invalidated (--dry-run: nothing sent)"
        } else {
            "invalidated"
        };
        say(
            args,
            &format!(
                "era_invalidate: {cache_name}: note: {} cache blocks {done}; {} written \
                 blocks were not cached; metadata snapshot {} of {device} read and dropped, \
                 next --written-since {}",
                inv.count(),
                inv.not_cached_blocks(),
                info.snapshot_root,
                info.next_written_since()
            ),
        );
    }
    Ok(EXIT_OK)
}

/// The run on a metadata device or file.
fn offline_run(args: &Args, plan: Plan, started: &Cell<bool>) -> anyhow::Result<u8> {
    let input = args.source.name();
    let io = era_files::open_era_input(&input, era_files::read_mode(args.metadata_snapshot))?;
    let md = EraMetadata::from_io(Box::new(io), args.metadata_snapshot).on_file(&input)?;
    // Refused before the output is touched.
    Offline::of(&md, args.written_since)
        .per_block(plan.units, md.superblock().nr_blocks as u64)
        .on_file(&input)?;
    let mut out = cli::Output::create(args.output.as_deref(), &[&input])?;
    let mut marking = Marking {
        out: &mut out,
        started,
    };
    let name = input.display().to_string();
    let mut warn = |w| say(args, &finding_line("era_invalidate", &name, &w));
    let (format, units, since) = (plan.format, plan.units, args.written_since);
    match md.write_written_since(&mut marking, format, units, since, &mut warn) {
        Ok(()) => {}
        Err(StreamError::Metadata(e)) => return Err(e).on_file(&input),
        Err(StreamError::Io(e)) => return Err(e.into()),
    }
    out.commit()?;
    Ok(EXIT_OK)
}

/// The run that lists the cache blocks to invalidate (`--cache-metadata`).
fn cache_run(
    args: &Args,
    cache_path: &Path,
    list: CacheList,
    started: &Cell<bool>,
) -> anyhow::Result<u8> {
    let input = args.source.name();
    let io = era_files::open_era_input(&input, era_files::read_mode(args.metadata_snapshot))?;
    let md = EraMetadata::from_io(Box::new(io), args.metadata_snapshot).on_file(&input)?;
    let cache_io = open_device(cache_path, OpenMode::ReadExclusive, "input", CACHE_BUSY)?;
    let cache = CacheMetadata::from_io(Box::new(cache_io)).on_file(cache_path)?;
    let name = input.display().to_string();
    let mut warn = |w| say(args, &finding_line("era_invalidate", &name, &w));
    // Both in sectors: era blocks (below 2^31, each below 2^32 sectors) end below 2^63.
    let sectors = u64::from(md.superblock().data_block_size);
    let mut matcher = Matcher::new(&cache);
    let mut written = |r: Range<u64>| matcher.written(r.start * sectors..r.end * sectors);
    match md.each_written_since(args.written_since, &mut written, &mut warn) {
        Ok(()) => {}
        Err(ListError::Metadata(e)) => return Err(e).on_file(&input),
        Err(ListError::Handing(e)) => return Err(e).on_file(cache_path),
    }
    let to_invalidate = matcher.finish().on_file(cache_path)?;
    let nr_blocks = u64::from(md.superblock().nr_blocks);
    let mut out = cli::Output::create(args.output.as_deref(), &[&input, cache_path])?;
    started.set(true);
    match list {
        CacheList::Text => to_invalidate.write_text(&mut out)?,
        CacheList::Messages => to_invalidate.write_messages(&mut out)?,
        CacheList::Json => {
            let read = Offline::of(&md, args.written_since);
            let cache_name = cache_path.display().to_string();
            crate::json::Object::begin(&mut out)?
                .field("written_since", read.since)?
                .field("era", read.era)?
                .field("next_written_since", read.next_written_since())?
                .field("snapshot_read", read.snapshot_era.is_some())?
                .field("block_size_sectors", read.block_size)?
                .field("nr_blocks", nr_blocks)?
                .field("past_current_era", read.since > md.superblock().current_era)?
                .raw("cache", |w| {
                    to_invalidate.write_json(w, ("metadata", &cache_name), |_| Ok(()))
                })?
                .end()?;
            out.write_all(b"\n")?;
        }
    }
    out.commit()?;
    Ok(EXIT_OK)
}

/// An output that says when the first byte is written to it: the list is written as the
/// metadata is read, and a failure before that still owes a script its JSON.
struct Marking<'a> {
    out: &'a mut dyn Write,
    started: &'a Cell<bool>,
}

impl Write for Marking<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.started.set(true);
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parsed;

    fn plan_of(line: &[&str]) -> Result<Plan, &'static str> {
        plan(&parsed(line))
    }

    #[test]
    fn xml_in_blocks_is_the_default_and_json_the_default_of_live() {
        let xml = Plan {
            format: Format::Xml,
            units: Units::Blocks,
            cache: None,
        };
        assert_eq!(plan_of(&["i", "--written-since", "3", "m"]), Ok(xml));
        let live = plan_of(&["i", "--written-since", "3", "--live", "era0"]).unwrap();
        assert_eq!(live.format, Format::Json);
    }

    #[test]
    fn cache_blocks_are_text_json_or_messages_and_have_no_units() {
        let with = |more: &[&str]| {
            let line = ["i", "--written-since", "3", "--cache-metadata", "c", "m"];
            plan_of(&[&line[..], more].concat()).map(|p| p.cache)
        };
        assert_eq!(with(&[]), Ok(Some(CacheList::Text)));
        assert_eq!(with(&["--format", "json"]), Ok(Some(CacheList::Json)));
        assert_eq!(with(&["--messages"]), Ok(Some(CacheList::Messages)));
        assert!(with(&["--format", "xml"])
            .unwrap_err()
            .contains("text, json or"));
        assert!(with(&["--units", "bytes"])
            .unwrap_err()
            .contains("by number"));
        let messages_alone = ["i", "--written-since", "3", "--messages", "m"];
        assert!(Args::try_parse_from(messages_alone).is_err());
        let with_live = [
            "i",
            "--written-since",
            "3",
            "--live",
            "e",
            "--cache-metadata",
            "c",
        ];
        assert!(Args::try_parse_from(with_live).is_err());
    }

    #[test]
    fn the_format_asked_wins_over_the_default_of_live() {
        let p = plan_of(&[
            "i",
            "--written-since",
            "3",
            "--live",
            "e",
            "--format",
            "xml",
        ]);
        assert_eq!(p.unwrap().format, Format::Xml);
        let p = plan_of(&["i", "--written-since", "3", "--format", "text", "m"]);
        assert_eq!(p.unwrap().format, Format::Text);
    }

    #[test]
    fn xml_is_refused_other_units_but_text_and_json_take_them() {
        for units in ["sectors", "bytes"] {
            let p = plan_of(&["i", "--written-since", "3", "--units", units, "m"]);
            assert_eq!(p, Err("--units sectors|bytes needs --format text or json"));
            let line = ["i", "--written-since", "3", "--live", "e", "--units", units];
            assert_eq!(plan_of(&line).unwrap().format, Format::Json);
        }
        let line = [
            "i",
            "--written-since",
            "3",
            "--format",
            "text",
            "--units",
            "bytes",
            "m",
        ];
        let p = plan_of(&line).unwrap();
        assert_eq!((p.format, p.units), (Format::Text, Units::Bytes));
    }

    #[test]
    fn every_format_and_unit_is_accepted_by_its_name() {
        let with = |option, name| {
            Args::try_parse_from(["i", "--written-since", "0", option, name, "m"]).unwrap()
        };
        let formats = ["xml", "text", "json"].map(|name| with("--format", name).format);
        assert_eq!(formats, [Format::Xml, Format::Text, Format::Json].map(Some));
        let units = ["blocks", "sectors", "bytes"].map(|name| with("--units", name).units);
        assert_eq!(units, [Units::Blocks, Units::Sectors, Units::Bytes]);
    }
}
