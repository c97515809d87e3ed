//! Reading `log_dump`'s XML back (for `log_restore`), streaming, with the rules and the
//! positions (`line L, column C`) of [`crate::xml`] in every error.

use std::io::Read;
use std::ops::Range;

use super::bitmap::Bitmap;
use super::error::LogError;
use super::geometry::MAX_REGIONS;
use super::header::{Header, NR_REGIONS_LVM_INITIALISED, VERSION, VERSION_1};
use crate::xml::markup::{lossy, Tag};
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
    if version != u64::from(VERSION) && version != u64::from(VERSION_1) {
        return Err(err(at, format!("<{E}>: version {version} is not 1 or 2")));
    }
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
    a.num(E, "region_size", at)?;
    Ok(Root {
        at,
        version: version as u32,
        nr_regions,
        regions,
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
    a.num(E, "begin_sector", at)?;
    a.num(E, "end_sector", at)?;
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
    Ok(begin..end)
}

/// Parses log_dump's XML. Errors carry the line and column of the element at fault.
pub fn parse(input: impl Read) -> Result<LogSpec, LogError> {
    let mut reader = Reader::new(input);
    let mut root_seen: Option<Root> = None;
    let mut closed = false;
    let mut in_dirty = false;
    let mut dirty: Vec<Range<u64>> = Vec::new();
    loop {
        let (at, ev) = match reader.next_event() {
            Ok(next) => next,
            Err(ReadError::Io(e)) => return Err(LogError::io("read error", e)),
            Err(ReadError::Xml(e)) => return Err(err(e.pos, format!("malformed XML: {}", e.msg))),
        };
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Eof => break,
            Event::Text => return Err(err(at, "unexpected text")),
            Event::Start(e) | Event::Empty(e) if !closed && root_seen.is_none() => {
                if e.name != "dirty_log" {
                    return Err(err(at, "the document must start with <dirty_log>"));
                }
                root_seen = Some(root(&e, at)?);
                closed = empty;
            }
            Event::Start(e) | Event::Empty(e) if !closed && !in_dirty => {
                let Some(r) = root_seen.as_ref() else {
                    return Err(err(at, "the document must start with <dirty_log>"));
                };
                if e.name != "dirty" {
                    return Err(err(
                        at,
                        format!("unexpected element <{}> in <dirty_log>", e.name),
                    ));
                }
                let prev_end = dirty.last().map_or(0, |d| d.end);
                dirty.push(dirty_range(&e, at, r, prev_end)?);
                in_dirty = !empty;
            }
            Event::End("dirty") if in_dirty => in_dirty = false,
            Event::End("dirty_log") if !in_dirty && !closed => closed = true,
            Event::End(n) if !closed => {
                let open = if in_dirty { "dirty" } else { "dirty_log" };
                return Err(err(
                    at,
                    format!("malformed XML: </{n}> does not close <{open}>"),
                ));
            }
            _ => return Err(err(at, "unexpected markup")),
        }
    }
    let at_end = reader.pos();
    let Some(r) = root_seen else {
        return Err(err(at_end, "no <dirty_log> element"));
    };
    if !closed {
        return Err(err(at_end, "<dirty_log> is not closed"));
    }
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
    Ok(LogSpec {
        version: r.version,
        nr_regions: r.nr_regions,
        regions: r.regions,
        dirty,
    })
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
