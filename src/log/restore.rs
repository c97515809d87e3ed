//! Reading `log_dump`'s XML back (for `log_restore`), streaming, with the rules and the
//! positions (`line L, column C`) of [`crate::xml`] in every error.

use std::io::Read;
use std::ops::Range;

use super::error::LogError;
use super::format::bitmap::Bitmap;
use super::format::geometry::MAX_REGIONS;
use super::format::header::{Header, NR_REGIONS_LVM_INITIALISED, VERSION, VERSION_1};
use crate::xml::markup::{lossy, Markup, Tag};
use crate::xml::reader::{Event, ReadError, Reader};
use crate::xml::{Pos, XmlError};

/// A log as described by the XML: header fields and dirty ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSpec {
    /// Header version to write (1 or 2).
    pub version: u32,
    /// Header `nr_regions` to write.
    pub nr_regions: u64,
    /// Regions the bits describe (the `regions` attribute, else `nr_regions`).
    pub regions: u64,
    /// Dirty ranges, ascending and disjoint, end exclusive, within `regions`.
    pub dirty: Vec<Range<u64>>,
}

impl LogSpec {
    /// The header to write.
    pub fn header(&self) -> Header {
        Header {
            version: self.version,
            ..Header::new(self.nr_regions)
        }
    }

    /// The clean bitmap to write: every region clean except the dirty ranges.
    pub fn bitmap(&self) -> Bitmap {
        let mut b = Bitmap::filled(self.regions, true);
        for d in &self.dirty {
            b.set_range(d.clone(), false);
        }
        b
    }
}

fn err(at: Pos, message: impl Into<String>) -> LogError {
    LogError::Xml(XmlError {
        pos: at,
        msg: message.into(),
    })
}

/// The attributes of an element, by name, as text.
struct Attrs<'a> {
    pairs: Vec<(&'a str, String)>,
}

impl<'a> Attrs<'a> {
    fn of(e: &Tag<'a>, at: Pos) -> Result<Attrs<'a>, LogError> {
        let mut pairs = Vec::new();
        for a in e.attributes() {
            let (key, value) = a.map_err(|m| err(at, format!("malformed XML: {m}")))?;
            pairs.push((key, lossy(value)));
        }
        Ok(Attrs { pairs })
    }

    fn check_known(&self, elem: &str, known: &[&str], at: Pos) -> Result<(), LogError> {
        for (k, _) in &self.pairs {
            if !known.contains(k) {
                return Err(err(at, format!("<{elem}>: unknown attribute {k}")));
            }
        }
        Ok(())
    }

    fn num(&self, elem: &str, key: &str, at: Pos) -> Result<Option<u64>, LogError> {
        match self.pairs.iter().find(|(k, _)| *k == key) {
            None => Ok(None),
            Some((_, v)) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                err(
                    at,
                    format!("<{elem}>: attribute {key}=\"{v}\" is not an unsigned integer"),
                )
            }),
        }
    }

    fn required(&self, elem: &str, key: &str, at: Pos) -> Result<u64, LogError> {
        self.num(elem, key, at)?
            .ok_or_else(|| err(at, format!("<{elem}>: missing attribute {key}")))
    }
}

struct Root {
    at: Pos,
    version: u32,
    nr_regions: u64,
    regions: u64,
    region_size: Option<u64>,
    clean: Option<u64>,
    dirty: Option<u64>,
}

fn root(e: &Tag<'_>, at: Pos) -> Result<Root, LogError> {
    const E: &str = "dirty_log";
    let a = Attrs::of(e, at)?;
    a.check_known(
        E,
        &[
            "version",
            "nr_regions",
            "regions",
            "region_size",
            "clean",
            "dirty",
        ],
        at,
    )?;
    let version = a.required(E, "version", at)?;
    let Some(version) = u32::try_from(version)
        .ok()
        .filter(|&v| v == VERSION || v == VERSION_1)
    else {
        return Err(err(at, format!("<{E}>: version {version} is not 1 or 2")));
    };
    let nr_regions = a.required(E, "nr_regions", at)?;
    let regions = match a.num(E, "regions", at)? {
        Some(r) => r,
        None if nr_regions == NR_REGIONS_LVM_INITIALISED => {
            return Err(err(
                at,
                format!(
                    "<{E}>: nr_regions is LVM's 'never activated' value; a regions attribute \
                     must give the count of the bits"
                ),
            ))
        }
        None => nr_regions,
    };
    if nr_regions > MAX_REGIONS && nr_regions != NR_REGIONS_LVM_INITIALISED {
        return Err(err(
            at,
            format!("<{E}>: nr_regions {nr_regions} is not below 2^32"),
        ));
    }
    if regions > MAX_REGIONS {
        return Err(err(
            at,
            format!("<{E}>: regions {regions} is not below 2^32"),
        ));
    }
    let region_size = a.num(E, "region_size", at)?;
    if region_size == Some(0) {
        return Err(err(at, format!("<{E}>: region_size is 0")));
    }
    Ok(Root {
        at,
        version,
        nr_regions,
        regions,
        region_size,
        clean: a.num(E, "clean", at)?,
        dirty: a.num(E, "dirty", at)?,
    })
}

fn dirty_range(e: &Tag<'_>, at: Pos, root: &Root, prev_end: u64) -> Result<Range<u64>, LogError> {
    const E: &str = "dirty";
    let a = Attrs::of(e, at)?;
    a.check_known(E, &["begin", "end", "begin_sector", "end_sector"], at)?;
    let begin = a.required(E, "begin", at)?;
    let end = a.required(E, "end", at)?;
    let sectors = [a.num(E, "begin_sector", at)?, a.num(E, "end_sector", at)?];
    if begin >= end {
        return Err(err(at, format!("<{E}>: empty range {begin}..{end}")));
    }
    if end > root.regions {
        return Err(err(
            at,
            format!(
                "<{E}>: range {begin}..{end} goes past the last region ({} regions)",
                root.regions
            ),
        ));
    }
    if begin < prev_end {
        return Err(err(
            at,
            format!("<{E}>: range {begin}..{end} overlaps or precedes the previous range"),
        ));
    }
    check_sectors(sectors, at, root, begin..end)?;
    Ok(begin..end)
}

/// Checks a range's sector attributes against `region_size`: log_dump writes both from the
/// same geometry, so a disagreement means an edited document or halves of two dumps. Only
/// the range ending at the last region may end early (log_dump clips it to `--length`).
fn check_sectors(
    [begin_sector, end_sector]: [Option<u64>; 2],
    at: Pos,
    root: &Root,
    r: Range<u64>,
) -> Result<(), LogError> {
    const E: &str = "dirty";
    let Some(size) = root.region_size else {
        let given = [("begin_sector", begin_sector), ("end_sector", end_sector)];
        return match given.iter().find(|(_, v)| v.is_some()) {
            Some((key, _)) => Err(err(
                at,
                format!("<{E}>: {key} given, but <dirty_log> has no region_size"),
            )),
            None => Ok(()),
        };
    };
    // In u128, where no product of two u64 overflows.
    let sector = |region: u64| u128::from(region) * u128::from(size);
    if let Some(s) = begin_sector.filter(|&s| u128::from(s) != sector(r.start)) {
        return Err(err(
            at,
            format!(
                "<{E}>: begin_sector=\"{s}\", but region {} begins at sector {} \
                 (region_size {size})",
                r.start,
                sector(r.start)
            ),
        ));
    }
    let Some(s) = end_sector else {
        return Ok(());
    };
    let (low, full) = (sector(r.end - 1), sector(r.end));
    let clipped = r.end == root.regions && u128::from(s) > low && u128::from(s) < full;
    if u128::from(s) == full || clipped {
        return Ok(());
    }
    let expected = if r.end == root.regions {
        format!("after sector {low} and at sector {full} at most")
    } else {
        format!("at sector {full}")
    };
    Err(err(
        at,
        format!(
            "<{E}>: end_sector=\"{s}\", but range {}..{} ends {expected} (region_size {size})",
            r.start, r.end
        ),
    ))
}

/// Where the reader is in the document, and what it has gathered so far.
#[derive(Default)]
struct Document {
    root: Option<Root>,
    closed: bool,
    in_dirty: bool,
    dirty: Vec<Range<u64>>,
}

impl Document {
    /// Takes the next event of the document; `false` once the input has ended.
    fn event(&mut self, at: Pos, ev: Event<'_>) -> Result<bool, LogError> {
        let m = match ev {
            Event::Eof => return Ok(false),
            Event::Text => return Err(err(at, "unexpected text")),
            Event::Markup(m) => m,
        };
        let empty = matches!(m, Markup::Empty(_));
        match m {
            Markup::Start(e) | Markup::Empty(e) if !self.closed && self.root.is_none() => {
                if e.name == "superblock" {
                    let what = "the document must start with <dirty_log>: this is the XML of \
                                era_dump (dm-era metadata), which era_restore reads";
                    return Err(err(at, what));
                }
                if e.name != "dirty_log" {
                    return Err(err(at, "the document must start with <dirty_log>"));
                }
                self.root = Some(root(&e, at)?);
                self.closed = empty;
            }
            Markup::Start(e) | Markup::Empty(e) if !self.closed && !self.in_dirty => {
                self.dirty_element(&e, at)?;
                self.in_dirty = !empty;
            }
            Markup::End("dirty") if self.in_dirty => self.in_dirty = false,
            Markup::End("dirty_log") if !self.in_dirty && !self.closed => self.closed = true,
            Markup::End(n) if !self.closed => {
                let open = if self.in_dirty { "dirty" } else { "dirty_log" };
                return Err(err(
                    at,
                    format!("malformed XML: </{n}> does not close <{open}>"),
                ));
            }
            _ => return Err(err(at, "unexpected markup")),
        }
        Ok(true)
    }

    /// An element inside `<dirty_log>`, which must be a `<dirty>` range.
    fn dirty_element(&mut self, e: &Tag<'_>, at: Pos) -> Result<(), LogError> {
        let Some(r) = self.root.as_ref() else {
            return Err(err(at, "the document must start with <dirty_log>"));
        };
        if e.name != "dirty" {
            return Err(err(
                at,
                format!("unexpected element <{}> in <dirty_log>", e.name),
            ));
        }
        let prev_end = self.dirty.last().map_or(0, |d| d.end);
        self.dirty.push(dirty_range(e, at, r, prev_end)?);
        Ok(())
    }

    /// The log described, once the input has ended at `at_end`.
    fn finish(self, at_end: Pos) -> Result<LogSpec, LogError> {
        let Some(r) = self.root else {
            return Err(err(at_end, "no <dirty_log> element"));
        };
        if !self.closed {
            return Err(err(at_end, "<dirty_log> is not closed"));
        }
        check_counts(&r, &self.dirty)?;
        Ok(LogSpec {
            version: r.version,
            nr_regions: r.nr_regions,
            regions: r.regions,
            dirty: self.dirty,
        })
    }
}

/// Checks the root's `clean` and `dirty` counts, when given, against the ranges.
fn check_counts(r: &Root, dirty: &[Range<u64>]) -> Result<(), LogError> {
    let n_dirty: u64 = dirty.iter().map(|d| d.end - d.start).sum();
    if let Some(d) = r.dirty {
        if d != n_dirty {
            return Err(err(
                r.at,
                format!("<dirty_log>: dirty=\"{d}\", but the ranges hold {n_dirty} regions"),
            ));
        }
    }
    if let Some(c) = r.clean {
        if c != r.regions - n_dirty {
            return Err(err(
                r.at,
                format!(
                    "<dirty_log>: clean=\"{c}\", but {} of {} regions are not in a dirty range",
                    r.regions - n_dirty,
                    r.regions
                ),
            ));
        }
    }
    Ok(())
}

/// Parses log_dump's XML. Errors carry the line and column of the element at fault.
pub fn parse(input: impl Read) -> Result<LogSpec, LogError> {
    let mut reader = Reader::new(input);
    let mut doc = Document::default();
    loop {
        let (at, ev) = match reader.next_event() {
            Ok(next) => next,
            Err(ReadError::Io(e)) => return Err(LogError::io("read error", e)),
            Err(ReadError::Xml(e)) => return Err(err(e.pos, format!("malformed XML: {}", e.msg))),
        };
        if !doc.event(at, ev)? {
            break;
        }
    }
    doc.finish(reader.pos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_dump_xml_is_read_back() {
        let xml = "<dirty_log version=\"2\" nr_regions=\"512\" region_size=\"128\" clean=\"510\" dirty=\"2\">\n  <dirty begin=\"96\" end=\"98\" begin_sector=\"12288\" end_sector=\"12544\"/>\n</dirty_log>\n";
        let s = parse(xml.as_bytes()).unwrap();
        assert_eq!(s.version, 2);
        assert_eq!(s.nr_regions, 512);
        assert_eq!(s.dirty, vec![96..98]);
        let b = s.bitmap();
        assert_eq!(b.count_dirty(), 2);
        assert_eq!(b.dirty_ranges(), vec![96..98]);
    }

    #[test]
    fn sector_attributes_are_checked_without_overflow() {
        let doc = |size: &str, range: &str| {
            format!(
                "<dirty_log version=\"2\" nr_regions=\"4\" region_size=\"{size}\">\
                 <dirty {range}/></dirty_log>"
            )
        };
        let ok = |xml: String| parse(xml.as_bytes()).map(|s| s.dirty);
        assert_eq!(
            ok(doc(
                "8",
                "begin=\"2\" end=\"4\" begin_sector=\"16\" end_sector=\"25\""
            ))
            .unwrap(),
            vec![2..4]
        );
        assert!(ok(doc("8", "begin=\"2\" end=\"3\" end_sector=\"23\"")).is_err());
        let huge = u64::MAX.to_string();
        let e = ok(doc(&huge, "begin=\"1\" end=\"2\" begin_sector=\"0\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("begins at sector 18446744073709551615 "), "{e}");
        let e = ok(doc(&huge, "begin=\"1\" end=\"2\" end_sector=\"0\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ends at sector 36893488147419103230 "), "{e}");
    }

    #[test]
    fn errors_carry_line_and_column() {
        let xml = "<dirty_log version=\"2\" nr_regions=\"16\">\n  <dirty begin=\"3\" end=\"2\"/>\n</dirty_log>\n";
        let e = parse(xml.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("line 2, column 3: "), "{e}");
        let xml = "<dirty_log version=\"2\" nr_regions=\"16\">\n\n    <dirty begin=\"3\" end=\"17\"/>\n</dirty_log>";
        let e = parse(xml.as_bytes()).unwrap_err().to_string();
        assert!(
            e.starts_with("line 3, column 5: ") && e.contains("past the last region"),
            "{e}"
        );
        let e = parse("<dirty_log version=\"3\" nr_regions=\"16\"/>".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 3"), "{e}");
        let xml = "<dirty_log version=\"2\" nr_regions=\"16\" dirty=\"1\">\n</dirty_log>";
        assert!(parse(xml.as_bytes()).is_err());
        let xml = "<dirty_log version=\"2\" nr_regions=\"16\">\n<dirty begin=\"1\" end=\"2\"/>";
        assert!(parse(xml.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("not closed"));
        let xml = "<dirty_log version=\"2\" nr_regions=\"16\"><dirty begin=\"4\" end=\"6\"/><dirty begin=\"1\" end=\"2\"/></dirty_log>";
        assert!(parse(xml.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("overlaps"));
        let xml = "<dirty_log version=\"2\" nr_regions=\"18446744073709551615\"/>";
        assert!(parse(xml.as_bytes()).is_err());
        let xml = "<dirty_log version=\"2\" nr_regions=\"18446744073709551615\" regions=\"8\"/>";
        assert_eq!(parse(xml.as_bytes()).unwrap().regions, 8);
    }
}
