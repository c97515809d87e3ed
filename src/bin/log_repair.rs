//! log_repair: rewrite the header or the clean bits of a dm-log disk dirty log, or
//! resynchronise the mirror legs offline.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{ArgGroup, CommandFactory, Parser};
use indicatif::{ProgressBar, ProgressStyle};

use era_log_tools::cli::{run, stderr_is_tty, EXIT_OK};
use era_log_tools::log::device::{logical_block_size, open, write_prefix};
use era_log_tools::log::geometry::{buf_size, Geometry};
use era_log_tools::log::header::{Header, NrRegions};
use era_log_tools::log::image::{read_header, LogImage, ReadOptions};
use era_log_tools::log::repair::{count, describe_changes, format_ranges, parse_ranges, BitRepair};
use era_log_tools::log::resync::{LegSpec, Legs};
use era_log_tools::log::LogError;
use era_log_tools::pdata::io::OpenMode;

const EXAMPLES: &str = "\
Examples:
  log_repair --force-resync --dry-run /dev/vg/lv_mlog
      show what a full resync at the next activation would take (nothing is written)
  log_repair --rewrite-header --nr-regions 2048 --backup log.bak /dev/vg/lv_mlog
      fix a damaged header (bad version or nr_regions); the bits are kept
  log_repair --resync --region-size 1024 --length 2097152 \\
             --leg /dev/sdb1 --leg /dev/sdc1:2048 /dev/sdd1
      copy every dirty region from leg 0 to the other legs, then mark them clean
  log_repair --verify --region-size 1024 --leg /dev/sdb1 --leg /dev/sdc1 /dev/sdd1
      mark clean the dirty regions whose content is the same on every leg

Every mode writes only the first buf_size bytes of the log (header, header area, bitmap),
in one O_DIRECT write followed by fsync, with version 2 in the header. The mirror must be
inactive (on every cluster node): block devices are opened O_EXCL. --backup FILE saves the
bytes about to be overwritten as a raw copy; put it back with
  dd if=FILE of=LOG bs=$(stat -c %s FILE) count=1 conv=notrunc,fsync oflag=direct";

/// Repair a dm-log "disk" dirty log (the region log of the device-mapper mirror target).
#[derive(Parser)]
#[command(name = "log_repair", version, after_help = EXAMPLES)]
#[command(group(ArgGroup::new("mode").required(true).multiple(false).args([
    "rewrite_header", "force_resync", "clear_stray_bits", "resync", "verify", "mark_clean",
])))]
struct Cli {
    /// Rewrite the header {MiRr, 2, nr_regions}; the bits are kept. nr_regions comes from
    /// --nr-regions, from --region-size with --length, or stays as it is.
    #[arg(long)]
    rewrite_header: bool,
    /// Mark every region dirty: the kernel resynchronises the whole mirror at the next
    /// activation. Always safe.
    #[arg(long)]
    force_resync: bool,
    /// Clear the bits past the last region (the kernel does it anyway at activation).
    #[arg(long)]
    clear_stray_bits: bool,
    /// Offline resync: copy each dirty region from leg 0 to every other leg, fsync the legs,
    /// then mark those regions clean. Needs --region-size and the legs in table order.
    #[arg(long, requires_all = ["region_size", "legs"])]
    resync: bool,
    /// Compare each dirty region across the legs; mark clean those identical on every leg,
    /// report the others. Needs --region-size and the legs in table order.
    #[arg(long, requires_all = ["region_size", "legs"])]
    verify: bool,
    /// Mark RANGES clean (BEGIN..END end exclusive, or N, comma-separated). Unsafe unless the
    /// legs are known identical there: needs --unsafe-legs-identical.
    #[arg(long, value_name = "RANGES", requires = "unsafe_legs_identical")]
    mark_clean: Option<String>,
    /// Confirms that the legs hold the same data in the --mark-clean ranges.
    #[arg(long, requires = "mark_clean")]
    unsafe_legs_identical: bool,
    /// Region count to write into the header (--rewrite-header, --force-resync).
    #[arg(long, value_name = "N", conflicts_with_all = ["clear_stray_bits", "resync", "verify", "mark_clean"])]
    nr_regions: Option<u64>,
    /// Region size of the mirror in sectors.
    #[arg(long, value_name = "SECTORS")]
    region_size: Option<u64>,
    /// Length of the mirror in sectors (default: nr_regions × region size).
    #[arg(long, value_name = "SECTORS", requires = "region_size")]
    length: Option<u64>,
    /// A mirror leg, in table order (leg 0 is the source), with its offset in sectors.
    #[arg(long = "leg", value_name = "PATH[:OFFSET]")]
    legs: Vec<String>,
    /// Logical block size of the log device in bytes (default: the device's, else 512).
    #[arg(long, value_name = "BYTES")]
    logical_block_size: Option<u32>,
    /// Print what would change; write nothing (legs included).
    #[arg(long)]
    dry_run: bool,
    /// Save the bytes about to be overwritten to FILE (a new file; raw copy).
    #[arg(long, value_name = "FILE")]
    backup: Option<PathBuf>,
    /// Repair a device that does not carry the disk-log magic.
    #[arg(long)]
    force: bool,
    /// The log is a clustered-disk log of cmirrord (warns about host byte order).
    #[arg(long)]
    clustered: bool,
    /// The log device or image.
    log: PathBuf,
}

fn usage_error(msg: &str) -> ! {
    Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, msg)
        .exit()
}

fn progress_bar(total: u64) -> ProgressBar {
    if !stderr_is_tty() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(total).with_style(style)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let with_legs = cli.resync || cli.verify;
    if !cli.legs.is_empty() && !with_legs {
        usage_error("--leg is only used by --resync and --verify");
    }
    if with_legs && cli.legs.len() < 2 {
        usage_error("a mirror has at least 2 legs: give --leg for each, in table order");
    }
    if (cli.rewrite_header || cli.force_resync) && cli.region_size.is_some() && cli.length.is_none()
    {
        usage_error("--region-size needs --length to give a region count");
    }
    run("log_repair", || repair(&cli))
}

fn repair(cli: &Cli) -> anyhow::Result<u8> {
    let name = cli.log.display().to_string();
    let mut stdout = std::io::stdout().lock();
    if cli.clustered {
        eprintln!(
            "log_repair: warning: {name}: clustered-disk log (cmirrord): treated as a kernel disk \
             log, which is right only if it was written on a little-endian host; no cluster node \
             may have the mirror active"
        );
    }
    if let Some(b) = &cli.backup {
        if b.exists() {
            bail!(
                "{}: backup file exists; refusing to overwrite it",
                b.display()
            );
        }
    }
    let legs = cli
        .legs
        .iter()
        .map(|s| LegSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mark = cli.mark_clean.as_deref().map(parse_ranges).transpose()?;

    let lbs = logical_block_size(&cli.log, cli.logical_block_size).context(name.clone())?;
    let mode = if cli.dry_run {
        OpenMode::ReadExclusive
    } else {
        OpenMode::Write
    };
    let io = open(&cli.log, mode).context(name.clone())?;
    let (header, _) = read_header(&io).context(name.clone())?;
    if !cli.force {
        header
            .check_magic()
            .map_err(|e| anyhow!("{name}: {e}; --force repairs it anyway"))?;
    }
    let rewrites_header = cli.rewrite_header || cli.force_resync;
    if !rewrites_header {
        header.check_version().map_err(|e| {
            anyhow!("{name}: {e}; fix it first with --rewrite-header (or --force-resync)")
        })?;
    }

    let geometry_count = match (cli.region_size, cli.length) {
        (Some(rs), Some(len)) => Some(Geometry::new(rs, len).context(name.clone())?.region_count()),
        _ => None,
    };
    let header_count = match header.regions() {
        NrRegions::Count(n) => Ok(n),
        NrRegions::LvmInitialised => Err(LogError::UnknownNrRegions),
        NrRegions::Invalid(n) => Err(LogError::BadNrRegions { found: n }),
    };
    let nr = if rewrites_header {
        if let (Some(a), Some(b)) = (cli.nr_regions, geometry_count) {
            if a != b {
                bail!("--nr-regions {a} disagrees with --region-size/--length ({b} regions)");
            }
        }
        match cli.nr_regions.or(geometry_count) {
            Some(n) => n,
            None => header_count.context(name.clone())?,
        }
    } else {
        let n = header_count.context(name.clone())?;
        if let Some(g) = geometry_count {
            if g != n {
                bail!(
                    "{name}: log header: nr_regions {n} differs from the mirror's region count \
                     {g}; check --region-size/--length, or fix the header first with \
                     --rewrite-header"
                );
            }
        }
        n
    };
    let ro = ReadOptions {
        logical_block_size: lbs,
        nr_regions: Some(nr),
        accept_bad_magic: cli.force,
        accept_bad_version: rewrites_header,
    };
    let img = LogImage::read(&io, &ro).context(name.clone())?;

    let bits = if cli.resync || cli.verify {
        let rs = cli.region_size.unwrap_or(0);
        let geometry = match cli.length {
            Some(len) => Geometry::new(rs, len),
            None => Geometry::from_region_count(rs, nr),
        }
        .context(name.clone())?;
        let legs = Legs::open(&legs, geometry, &cli.log, cli.resync && !cli.dry_run)?;
        let mut bits = img.bitmap.clone();
        let total = legs.dirty_bytes(&bits);
        if cli.resync && cli.dry_run {
            let dirty = bits.dirty_ranges();
            writeln!(
                stdout,
                "{name}: would copy {} dirty regions ({total} bytes) from leg 0 to {} other \
                 legs: {}",
                count(&dirty),
                cli.legs.len() - 1,
                format_ranges(&dirty, 32)
            )?;
            // A resync leaves every region clean.
            bits.set_range(0..nr, true);
            bits
        } else {
            let pb = progress_bar(total);
            let mut tick = |n: u64| pb.inc(n);
            if cli.resync {
                let copied = legs.resync(&mut bits, &mut tick)?;
                pb.finish_and_clear();
                writeln!(
                    stdout,
                    "{name}: copied {} regions from leg 0 to {} other legs ({total} bytes): {}",
                    count(&copied),
                    cli.legs.len() - 1,
                    format_ranges(&copied, 32)
                )?;
            } else {
                let differ = legs.verify(&mut bits, &mut tick)?;
                pb.finish_and_clear();
                if differ.is_empty() {
                    writeln!(
                        stdout,
                        "{name}: every dirty region is identical on all legs"
                    )?;
                } else {
                    writeln!(
                        stdout,
                        "{name}: {} regions differ between legs and stay dirty: {}",
                        count(&differ),
                        format_ranges(&differ, usize::MAX)
                    )?;
                }
            }
            bits
        }
    } else {
        let repair = if cli.force_resync {
            BitRepair::ForceResync
        } else if cli.clear_stray_bits {
            BitRepair::ClearStrayBits
        } else if let Some(r) = mark {
            BitRepair::MarkClean(r)
        } else {
            BitRepair::KeepBits
        };
        repair.apply(&img.bitmap).context(name.clone())?
    };

    let (old, new) = img
        .render(&io, &Header::new(nr), &bits, buf_size(nr, lbs))
        .context(name.clone())?;
    let changes = describe_changes(old.as_slice(), new.as_slice());
    if changes.is_empty() {
        writeln!(stdout, "{name}: the log needs no change; nothing written")?;
        return Ok(EXIT_OK);
    }
    let verb = if cli.dry_run {
        "would change"
    } else {
        "changes"
    };
    for c in &changes {
        writeln!(stdout, "{name}: {verb}: {c}")?;
    }
    if cli.dry_run {
        writeln!(stdout, "{name}: dry run; nothing written")?;
        return Ok(EXIT_OK);
    }
    if let Some(b) = &cli.backup {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(b)
            .with_context(|| format!("{}: creating the backup", b.display()))?;
        f.write_all(old.as_slice())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("{}: writing the backup", b.display()))?;
        writeln!(
            stdout,
            "{name}: saved the {} bytes about to be overwritten to {}",
            old.len(),
            b.display()
        )?;
    }
    write_prefix(&io, &new).context(name.clone())?;
    writeln!(stdout, "{name}: wrote {} bytes and flushed", new.len())?;
    Ok(EXIT_OK)
}
