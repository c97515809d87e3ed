//! `log_dump`: what a log holds, what the kernel would make of it, and three renderings
//! (XML for log_restore, JSON for scripts, text for people).

use std::io::{self, Write};
use std::ops::Range;

use crate::json::{self, Object};
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::ByteIo;
use crate::pdata::report::{plural, Problem, Severity};

use super::error::LogError;
use super::format::geometry::{bitset_bytes, buf_size, check_region_count, Geometry};
use super::format::header::{Header, NrRegions, Padding, MAGIC, VERSION_1};
use super::image::{read_header, LogImage, ReadOptions};
use super::stream::{BitCounts, DirtyRanges};

/// What `log_dump` knows besides the log itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct DumpOptions {
    /// Logical block size of the log device (0 is not allowed; use the device's).
    pub logical_block_size: u32,
    /// Region size of the mirror, in sectors (with `length`, or not at all).
    pub region_size: Option<u64>,
    /// Length of the mirror, in sectors (with `region_size`, or not at all).
    pub length: Option<u64>,
    /// Region count to read the bits for instead of the header's.
    pub nr_regions: Option<u64>,
    /// The log belongs to a clustered mirror (cmirrord's clustered-disk log).
    pub clustered: bool,
}

/// Everything `log_dump` reports.
pub struct Report {
    /// The header as stored.
    pub header: Header,
    /// Bytes 16..1023.
    pub padding: Padding,
    /// Size of the device in bytes.
    pub device_size: u64,
    /// Logical block size used for `buf_size`.
    pub logical_block_size: u32,
    /// The checked log and what its bits count; `None` when the region count is unknown
    /// (LVM-initialised log and no count given). The dirty ranges are read again from the
    /// device as they are rendered.
    pub image: Option<(LogImage, BitCounts)>,
    /// Region size and length, when given (checked against the region count).
    pub geometry: Option<Geometry>,
    /// Problems and remarks, most serious first (docs/dirty-log-format.md §9.2).
    pub findings: Vec<Problem>,
}

/// A finding about `structure`, with what to do about it.
fn finding(severity: Severity, structure: &str, what: String, hint: Option<&str>) -> Problem {
    Problem {
        severity,
        error: Error::structure(structure, Fault::Invalid(what)),
        hint: hint.map(String::from),
    }
}

/// Reads and checks a log. The errors of docs/dirty-log-format.md §9.2 (bad magic, bad
/// version, invalid `nr_regions`, a region count the geometry given disagrees with, truncated
/// bitmap, device smaller than `buf_size`) are returned as errors; the rest become findings.
pub fn inspect(io: &dyn ByteIo, opts: &DumpOptions) -> Result<Report, LogError> {
    let (header, padding) = read_header(io)?;
    header.check_magic()?;
    header.check_version()?;
    let mut findings = header_findings(&header, padding, opts);
    let geometry = given_geometry(&header, opts)?;
    let count = regions_to_read(&header, opts, geometry, &mut findings)?;
    let image = match count {
        None if header.regions() == NrRegions::LvmInitialised => {
            findings.push(finding(
                Severity::Warning,
                "clean bitmap",
                "not read: the region count is unknown".into(),
                Some("give --nr-regions, or --region-size with --length"),
            ));
            None
        }
        _ => {
            let ro = ReadOptions {
                nr_regions: count,
                ..ReadOptions::strict(opts.logical_block_size)
            };
            let img = LogImage::read(io, &ro)?;
            let counts = img.count_bits(io)?;
            Some((img, counts))
        }
    };
    if let Some((img, counts)) = image.as_ref() {
        findings.extend(bitmap_findings(img, counts));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Ok(Report {
        header,
        padding,
        device_size: io.size_bytes(),
        logical_block_size: opts.logical_block_size,
        image,
        geometry,
        findings,
    })
}

/// What the header alone says: a clustered log, version 1, the padding.
fn header_findings(header: &Header, padding: Padding, opts: &DumpOptions) -> Vec<Problem> {
    let mut findings = Vec::new();
    if opts.clustered {
        findings.push(finding(
            Severity::Warning,
            "log",
            "clustered-disk log (cmirrord): read as a kernel disk log, which is right only if \
             it was written on a little-endian host (cmirrord stores the header and bitmap \
             words in host byte order)"
                .into(),
            Some("never modify it while any node has the mirror active"),
        ));
    }
    if header.version == VERSION_1 {
        findings.push(finding(
            Severity::Warning,
            "log header",
            "version 1 (before 2006): read as version 2, which it equals on little-endian \
             hosts"
                .into(),
            Some("the kernel rewrites it as 2 at the next activation"),
        ));
    }
    if padding == Padding::Mixed {
        findings.push(finding(
            Severity::Note,
            "log header",
            "bytes 16..1023 are neither all zero nor all 0xff".into(),
            Some("the kernel preserves them"),
        ));
    }
    findings
}

/// The region size and length given, checked against the header: a wrong region size or
/// length would label every range with the wrong sectors.
fn given_geometry(header: &Header, opts: &DumpOptions) -> Result<Option<Geometry>, LogError> {
    let geometry = Geometry::given(opts.region_size, opts.length)?;
    // The count read, --nr-regions or the header's, must fit the geometry: sector ranges
    // past the mirror's end would be clipped, and log_restore refuses them.
    let count = match (opts.nr_regions, header.regions()) {
        (Some(n), _) | (None, NrRegions::Count(n)) => Some(n),
        _ => None,
    };
    if let (Some(g), Some(n)) = (geometry, count) {
        check_region_count(n, &g)?;
    }
    Ok(geometry)
}

/// How many regions to read the bits of: `--nr-regions`, the header's count, or for a log
/// LVM never activated the geometry's.
fn regions_to_read(
    header: &Header,
    opts: &DumpOptions,
    geometry: Option<Geometry>,
    findings: &mut Vec<Problem>,
) -> Result<Option<u64>, LogError> {
    let mut count = opts.nr_regions;
    match header.regions() {
        NrRegions::Invalid(n) if count.is_none() => {
            return Err(LogError::BadNrRegions { found: n })
        }
        NrRegions::LvmInitialised => {
            findings.push(finding(
                Severity::Note,
                "log header",
                "nr_regions is all ones: initialised by LVM2 and never activated".into(),
                Some("the kernel takes the bits as they are at the first activation"),
            ));
            if count.is_none() {
                count = geometry.map(|g| g.region_count());
            }
        }
        NrRegions::Count(0) => findings.push(finding(
            Severity::Warning,
            "log header",
            "nr_regions is 0: the kernel treats every region as new and resynchronises the \
             whole mirror"
                .into(),
            None,
        )),
        NrRegions::Count(n) => {
            if let Some(c) = opts.nr_regions.filter(|&c| c != n) {
                findings.push(finding(
                    Severity::Warning,
                    "clean bitmap",
                    format!("read for {c} regions (as asked), but the header says {n}"),
                    None,
                ));
            }
        }
        NrRegions::Invalid(_) => {}
    }
    Ok(count)
}

/// What the bits say besides the dirty regions: stray bits, stale bytes.
fn bitmap_findings(img: &LogImage, counts: &BitCounts) -> Vec<Problem> {
    let stray = (counts.stray > 0).then(|| {
        let what = format!(
            "{} set past the last region ({}) in the last 64-bit word",
            plural(counts.stray, "stray bit"),
            img.nr_regions
        );
        let hint = "harmless; the kernel clears those in the last region's 32-bit word at \
                    activation, log_repair --clear-stray-bits clears them all";
        ("clean bitmap", what, hint)
    });
    let stale = (counts.stale > 0).then(|| {
        let what = format!(
            "{} after the clean bitmap (bits of an earlier, larger mirror)",
            plural(counts.stale, "non-zero byte")
        );
        ("log buffer", what, "the kernel ignores them")
    });
    [stray, stale]
        .into_iter()
        .flatten()
        .map(|(structure, what, hint)| finding(Severity::Note, structure, what, Some(hint)))
        .collect()
}

/// Output format of `log_dump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `<dirty_log>` with `<dirty>` ranges; read back by log_restore.
    Xml,
    /// One JSON object.
    Json,
    /// For people.
    Text,
}

/// Why a report could not be written out.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The log's bits could not be read again (the dirty ranges are read as they are
    /// written out).
    #[error(transparent)]
    Read(LogError),
    /// The output failed.
    #[error(transparent)]
    Write(#[from] io::Error),
}

/// Writes the report of the log on `io`, reading its dirty ranges from there, one piece of
/// the bitmap at a time.
pub fn render(
    r: &Report,
    io: &dyn ByteIo,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), RenderError> {
    let ranges = |img: &LogImage| img.dirty_ranges(io);
    match format {
        Format::Xml => render_xml(r, &ranges, out),
        Format::Json => render_json(r, &ranges, out),
        Format::Text => render_text(r, &ranges, out),
    }
}

/// How a renderer reads the dirty ranges of the log, as many times as it needs them.
type Ranges<'r> = dyn Fn(&LogImage) -> DirtyRanges<'r> + 'r;

/// Writes each of `ranges` with `write`, then reports the read error that ended them early.
fn each_range(
    mut ranges: DirtyRanges<'_>,
    write: &mut dyn FnMut(Range<u64>) -> io::Result<()>,
) -> Result<(), RenderError> {
    for d in ranges.by_ref() {
        write(d)?;
    }
    ranges.finish().map_err(RenderError::Read)
}

fn sectors(r: &Report, range: &Range<u64>) -> Option<Range<u64>> {
    r.geometry.map(|g| g.range_sectors(range))
}

fn render_xml(r: &Report, ranges: &Ranges<'_>, out: &mut dyn Write) -> Result<(), RenderError> {
    write!(
        out,
        "<dirty_log version=\"{}\" nr_regions=\"{}\"",
        r.header.version, r.header.nr_regions
    )?;
    let Some((img, counts)) = r.image.as_ref() else {
        return Ok(writeln!(out, "/>")?);
    };
    if img.nr_regions != r.header.nr_regions {
        write!(out, " regions=\"{}\"", img.nr_regions)?;
    }
    if let Some(g) = r.geometry {
        write!(out, " region_size=\"{}\"", g.region_size())?;
    }
    writeln!(
        out,
        " clean=\"{}\" dirty=\"{}\">",
        counts.clean,
        img.nr_regions - counts.clean
    )?;
    each_range(ranges(img), &mut |d| {
        write!(out, "  <dirty begin=\"{}\" end=\"{}\"", d.start, d.end)?;
        if let Some(s) = sectors(r, &d) {
            write!(
                out,
                " begin_sector=\"{}\" end_sector=\"{}\"",
                s.start, s.end
            )?;
        }
        writeln!(out, "/>")
    })?;
    Ok(writeln!(out, "</dirty_log>")?)
}

fn render_json(r: &Report, ranges: &Ranges<'_>, out: &mut dyn Write) -> Result<(), RenderError> {
    let img = r.image.as_ref().map(|(i, _)| i);
    let counts = r.image.as_ref().map(|(_, c)| c);
    let state = match r.header.regions() {
        NrRegions::Count(_) => "count",
        NrRegions::LvmInitialised => "lvm-initialised",
        NrRegions::Invalid(_) => "invalid",
    };
    let mut o = Object::begin(out)?;
    o.field("magic", format!("{:#010x}", r.header.magic))?
        .field("magic_ok", r.header.magic == MAGIC)?
        .field("version", r.header.version)?
        .field("nr_regions", r.header.nr_regions)?
        .field("nr_regions_state", state)?
        .field("regions", img.map(|i| i.nr_regions))?
        .field("header_padding", r.padding.name())?
        .field("logical_block_size", r.logical_block_size)?
        .field("bitset_bytes", img.map(|i| bitset_bytes(i.nr_regions)))?
        .field("buf_size", img.map(|i| i.buf_size()))?
        .field("device_size", r.device_size)?
        .field("region_size", r.geometry.map(|g| g.region_size()))?
        .field("length", r.geometry.map(|g| g.length()))?
        .field("clean", counts.map(|c| c.clean))?
        .field(
            "dirty",
            r.image.as_ref().map(|(i, c)| i.nr_regions - c.clean),
        )?
        .field("stray_bits", counts.map(|c| c.stray))?
        .field("stale_bytes_after_bitmap", counts.map(|c| c.stale))?
        .field("units", "regions")?;
    // Each list reads the ranges anew: nothing holds them all.
    let mut read = img.map(ranges);
    o.list(
        "ranges",
        read.iter_mut()
            .flatten()
            .map(|d| json::Range(d.start, d.end)),
    )?;
    finish(read)?;
    if r.geometry.is_some() {
        let mut read = img.map(ranges);
        let sectors = read.iter_mut().flatten().filter_map(|d| sectors(r, &d));
        o.list(
            "sector_ranges",
            sectors.map(|s| json::Range(s.start, s.end)),
        )?;
        finish(read)?;
    }
    o.list("findings", &r.findings)?.end()?;
    Ok(writeln!(out)?)
}

/// The read error that ended `ranges` early, if any.
fn finish(ranges: Option<DirtyRanges<'_>>) -> Result<(), RenderError> {
    ranges
        .map_or(Ok(()), DirtyRanges::finish)
        .map_err(RenderError::Read)
}

fn render_text(r: &Report, ranges: &Ranges<'_>, out: &mut dyn Write) -> Result<(), RenderError> {
    let h = &r.header;
    writeln!(out, "magic:              {:#010x} (MiRr, valid)", h.magic)?;
    writeln!(out, "version:            {}", h.version)?;
    let meaning = match h.regions() {
        NrRegions::Count(_) => String::new(),
        NrRegions::LvmInitialised => " (all ones: LVM-initialised, never activated)".into(),
        NrRegions::Invalid(_) => " (invalid)".into(),
    };
    writeln!(out, "nr_regions:         {}{meaning}", h.nr_regions)?;
    writeln!(out, "header padding:     {}", r.padding.name())?;
    writeln!(out, "device size:        {} bytes", r.device_size)?;
    writeln!(out, "logical block size: {} bytes", r.logical_block_size)?;
    if let Some(g) = r.geometry {
        writeln!(
            out,
            "region size:        {} sectors (mirror length {} sectors)",
            g.region_size(),
            g.length()
        )?;
    }
    let Some((img, counts)) = r.image.as_ref() else {
        writeln!(out, "clean bitmap:       not read (region count unknown)")?;
        return Ok(());
    };
    if img.nr_regions != h.nr_regions {
        writeln!(out, "regions read:       {}", img.nr_regions)?;
    }
    writeln!(out, "bitset bytes:       {}", bitset_bytes(img.nr_regions))?;
    writeln!(
        out,
        "buf_size:           {} bytes (device large enough)",
        buf_size(img.nr_regions, img.logical_block_size)
    )?;
    let dirty = img.nr_regions - counts.clean;
    writeln!(out, "clean regions:      {}", counts.clean)?;
    writeln!(out, "dirty regions:      {dirty}")?;
    if dirty > 0 {
        writeln!(out, "dirty ranges (end exclusive):")?;
        each_range(ranges(img), &mut |d| {
            write!(out, "  {} {}", d.start, d.end)?;
            if let Some(s) = sectors(r, &d) {
                write!(out, "  (sectors {} {})", s.start, s.end)?;
            }
            writeln!(out)
        })?;
    }
    for f in &r.findings {
        writeln!(out, "{f}")?;
    }
    Ok(())
}
