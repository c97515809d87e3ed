//! `log_dump`: what a log holds, what the kernel would make of it, and three renderings
//! (XML for log_restore, JSON for scripts, text for people).

use std::io::{self, Write};
use std::ops::Range;

use crate::pdata::io::ByteIo;

use super::error::LogError;
use super::geometry::{bitset_bytes, buf_size, check_region_count, Geometry, LengthSource};
use super::header::{Header, NrRegions, Padding, MAGIC, VERSION_1};
use super::image::{read_header, LogImage, ReadOptions};

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The kernel would misbehave or the log is unusable as it is.
    Warning,
    /// Harmless, for information.
    Note,
}

impl Severity {
    /// A word for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// A problem or remark about a log (docs/dirty-log-format.md §9.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// One line, naming the structure.
    pub message: String,
}

/// What `log_dump` knows besides the log itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct DumpOptions {
    /// Logical block size of the log device (0 is not allowed; use the device's).
    pub logical_block_size: u32,
    /// Region size of the mirror, in sectors.
    pub region_size: Option<u64>,
    /// Length of the mirror, in sectors (needs `region_size`).
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
    /// The decoded log; `None` when the region count is unknown (LVM-initialised log and
    /// no count given).
    pub image: Option<LogImage>,
    /// Region size and length, when given.
    pub geometry: Option<Geometry>,
    /// Problems and remarks, most serious first.
    pub findings: Vec<Finding>,
}

fn warn(findings: &mut Vec<Finding>, message: String) {
    findings.push(Finding {
        severity: Severity::Warning,
        message,
    });
}

fn note(findings: &mut Vec<Finding>, message: String) {
    findings.push(Finding {
        severity: Severity::Note,
        message,
    });
}

/// Reads and checks a log. The errors of docs/dirty-log-format.md §9.2 (bad magic, bad
/// version, invalid `nr_regions`, a region count the geometry given disagrees with, truncated
/// bitmap, device smaller than `buf_size`) are returned as errors; the rest become findings.
pub fn inspect(io: &dyn ByteIo, opts: &DumpOptions) -> Result<Report, LogError> {
    let (header, padding) = read_header(io)?;
    header.check_magic()?;
    header.check_version()?;
    let mut findings = Vec::new();
    if opts.clustered {
        warn(
            &mut findings,
            "clustered-disk log (cmirrord): read as a kernel disk log, which is right only if \
             it was written on a little-endian host (cmirrord stores the header and bitmap \
             words in host byte order); never modify it while any node has the mirror active"
                .into(),
        );
    }
    if header.version == VERSION_1 {
        warn(
            &mut findings,
            "log header: version 1 (before 2006): read as version 2, which it equals on \
             little-endian hosts; the kernel rewrites it as 2 at the next activation"
                .into(),
        );
    }
    let geometry = match (opts.region_size, opts.length) {
        (Some(rs), Some(len)) => Some(Geometry::new(rs, len)?),
        (Some(rs), None) => {
            // Checks the region size alone; the length comes from the region count below.
            Geometry::new(rs, rs)?;
            None
        }
        _ => None,
    };
    // A wrong region size or length would label every range with the wrong sectors.
    if let (Some(g), NrRegions::Count(n)) = (geometry, header.regions()) {
        if opts.nr_regions.is_none() {
            check_region_count(n, &g, LengthSource::Given)?;
        }
    }
    let mut count = opts.nr_regions;
    match header.regions() {
        NrRegions::Invalid(n) if count.is_none() => {
            return Err(LogError::BadNrRegions { found: n })
        }
        NrRegions::LvmInitialised => {
            note(
                &mut findings,
                "log header: nr_regions is all ones: initialised by LVM2 and never activated; \
                 the kernel takes the bits as they are at the first activation"
                    .into(),
            );
            if count.is_none() {
                count = geometry.map(|g| g.region_count());
            }
        }
        NrRegions::Count(0) => warn(
            &mut findings,
            "log header: nr_regions is 0: the kernel treats every region as new and \
             resynchronises the whole mirror"
                .into(),
        ),
        _ => {}
    }
    if let (Some(c), NrRegions::Count(n)) = (opts.nr_regions, header.regions()) {
        if c != n {
            warn(
                &mut findings,
                format!("clean bitmap: read for {c} regions (as asked), but the header says {n}"),
            );
        }
    }
    let image = match count {
        None if header.regions() == NrRegions::LvmInitialised => {
            warn(
                &mut findings,
                "clean bitmap: not read: the region count is unknown (give --nr-regions, or \
                 --region-size with --length)"
                    .into(),
            );
            None
        }
        _ => {
            let ro = ReadOptions {
                nr_regions: count,
                ..ReadOptions::strict(opts.logical_block_size)
            };
            Some(LogImage::read(io, &ro)?)
        }
    };
    if let Some(img) = image.as_ref() {
        let stray = img.bitmap.stray_bits();
        if stray > 0 {
            note(
                &mut findings,
                format!(
                    "clean bitmap: {stray} stray bits set past region {} in the last 64-bit \
                     word; the kernel clears them at activation (log_repair --clear-stray-bits)",
                    img.nr_regions
                ),
            );
        }
        let stale = img.stale_bytes_after_bitmap();
        if stale > 0 {
            note(
                &mut findings,
                format!(
                    "log buffer: {stale} non-zero bytes after the clean bitmap (bits of an \
                     earlier, larger mirror); the kernel ignores them"
                ),
            );
        }
    }
    if padding == Padding::Mixed {
        note(
            &mut findings,
            "log header: bytes 16..1023 are neither all zero nor all 0xff; the kernel \
             preserves them"
                .into(),
        );
    }
    findings.sort_by_key(|f| f.severity == Severity::Note);
    Ok(Report {
        header,
        padding,
        device_size: io.size_bytes(),
        logical_block_size: opts.logical_block_size,
        image,
        geometry: geometry.or_else(|| {
            let rs = opts.region_size?;
            let n = count.or(match header.regions() {
                NrRegions::Count(n) => Some(n),
                _ => None,
            })?;
            Geometry::from_region_count(rs, n).ok()
        }),
        findings,
    })
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

/// Writes the report.
pub fn render(r: &Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Xml => render_xml(r, out),
        Format::Json => render_json(r, out),
        Format::Text => render_text(r, out),
    }
}

fn sectors(r: &Report, range: &Range<u64>) -> Option<Range<u64>> {
    r.geometry.map(|g| g.range_sectors(range))
}

fn render_xml(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    write!(
        out,
        "<dirty_log version=\"{}\" nr_regions=\"{}\"",
        r.header.version, r.header.nr_regions
    )?;
    let Some(img) = r.image.as_ref() else {
        return writeln!(out, "/>");
    };
    if img.nr_regions != r.header.nr_regions {
        write!(out, " regions=\"{}\"", img.nr_regions)?;
    }
    if let Some(g) = r.geometry {
        write!(out, " region_size=\"{}\"", g.region_size())?;
    }
    let dirty = img.bitmap.dirty_ranges();
    writeln!(
        out,
        " clean=\"{}\" dirty=\"{}\">",
        img.bitmap.count_clean(),
        img.bitmap.count_dirty()
    )?;
    for d in &dirty {
        write!(out, "  <dirty begin=\"{}\" end=\"{}\"", d.start, d.end)?;
        if let Some(s) = sectors(r, d) {
            write!(
                out,
                " begin_sector=\"{}\" end_sector=\"{}\"",
                s.start, s.end
            )?;
        }
        writeln!(out, "/>")?;
    }
    writeln!(out, "</dirty_log>")
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if u32::from(c) < 0x20 => o.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

fn render_json(r: &Report, out: &mut dyn Write) -> io::Result<()> {
    let img = r.image.as_ref();
    let state = match r.header.regions() {
        NrRegions::Count(_) => "count",
        NrRegions::LvmInitialised => "lvm-initialised",
        NrRegions::Invalid(_) => "invalid",
    };
    writeln!(out, "{{")?;
    writeln!(out, "  \"magic\": \"{:#010x}\",", r.header.magic)?;
    writeln!(out, "  \"magic_ok\": {},", r.header.magic == MAGIC)?;
    writeln!(out, "  \"version\": {},", r.header.version)?;
    writeln!(out, "  \"nr_regions\": {},", r.header.nr_regions)?;
    writeln!(out, "  \"nr_regions_state\": \"{state}\",")?;
    writeln!(out, "  \"regions\": {},", opt(img.map(|i| i.nr_regions)))?;
    writeln!(out, "  \"header_padding\": \"{}\",", r.padding.name())?;
    writeln!(out, "  \"logical_block_size\": {},", r.logical_block_size)?;
    writeln!(
        out,
        "  \"bitset_bytes\": {},",
        opt(img.map(|i| bitset_bytes(i.nr_regions)))
    )?;
    writeln!(out, "  \"buf_size\": {},", opt(img.map(|i| i.buf_size())))?;
    writeln!(out, "  \"device_size\": {},", r.device_size)?;
    writeln!(
        out,
        "  \"region_size\": {},",
        opt(r.geometry.map(|g| g.region_size()))
    )?;
    writeln!(
        out,
        "  \"length\": {},",
        opt(r.geometry.map(|g| g.length()))
    )?;
    writeln!(
        out,
        "  \"clean\": {},",
        opt(img.map(|i| i.bitmap.count_clean()))
    )?;
    writeln!(
        out,
        "  \"dirty\": {},",
        opt(img.map(|i| i.bitmap.count_dirty()))
    )?;
    writeln!(
        out,
        "  \"stray_bits\": {},",
        opt(img.map(|i| i.bitmap.stray_bits()))
    )?;
    writeln!(
        out,
        "  \"stale_bytes_after_bitmap\": {},",
        opt(img.map(|i| i.stale_bytes_after_bitmap()))
    )?;
    write!(out, "  \"dirty_ranges\": [")?;
    let ranges = img.map(|i| i.bitmap.dirty_ranges()).unwrap_or_default();
    for (k, d) in ranges.iter().enumerate() {
        let sep = if k == 0 { "" } else { "," };
        write!(
            out,
            "{sep}\n    {{\"begin\": {}, \"end\": {}",
            d.start, d.end
        )?;
        if let Some(s) = sectors(r, d) {
            write!(
                out,
                ", \"begin_sector\": {}, \"end_sector\": {}",
                s.start, s.end
            )?;
        }
        write!(out, "}}")?;
    }
    writeln!(out, "{}],", if ranges.is_empty() { "" } else { "\n  " })?;
    write!(out, "  \"findings\": [")?;
    for (k, f) in r.findings.iter().enumerate() {
        let sep = if k == 0 { "" } else { "," };
        write!(
            out,
            "{sep}\n    {{\"severity\": \"{}\", \"message\": {}}}",
            f.severity.name(),
            json_string(&f.message)
        )?;
    }
    writeln!(out, "{}]", if r.findings.is_empty() { "" } else { "\n  " })?;
    writeln!(out, "}}")
}

fn render_text(r: &Report, out: &mut dyn Write) -> io::Result<()> {
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
    let Some(img) = r.image.as_ref() else {
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
    writeln!(out, "clean regions:      {}", img.bitmap.count_clean())?;
    writeln!(out, "dirty regions:      {}", img.bitmap.count_dirty())?;
    let ranges = img.bitmap.dirty_ranges();
    if !ranges.is_empty() {
        writeln!(out, "dirty ranges (end exclusive):")?;
        for d in &ranges {
            write!(out, "  {}..{}", d.start, d.end)?;
            if let Some(s) = sectors(r, d) {
                write!(out, "  (sectors {}..{})", s.start, s.end)?;
            }
            writeln!(out)?;
        }
    }
    for f in &r.findings {
        writeln!(out, "{}: {}", f.severity.name(), f.message)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
