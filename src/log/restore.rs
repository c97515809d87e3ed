//! Reading `log_dump`'s XML back (for `log_restore`), streaming, with line:column in every
//! error.

use std::io::{self, BufRead, Read};
use std::ops::Range;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::bitmap::Bitmap;
use super::error::LogError;
use super::geometry::MAX_REGIONS;
use super::header::{Header, NR_REGIONS_LVM_INITIALISED, VERSION, VERSION_1};

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

/// A `BufRead` that counts lines as the parser consumes its input, so that positions can
/// be reported as line:column without keeping the document.
struct LineCounter<R> {
    inner: R,
    line: u64,
    line_start: u64,
    pos: u64,
}

impl<R: BufRead> Read for LineCounter<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(out.len());
            out[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // The bytes being consumed are still in the inner buffer, so this does no I/O.
        if let Ok(buf) = self.inner.fill_buf() {
            for (i, &b) in buf.iter().take(amt).enumerate() {
                if b == b'\n' {
                    self.line += 1;
                    self.line_start = self.pos + i as u64 + 1;
                }
            }
        }
        self.pos += amt as u64;
        self.inner.consume(amt);
    }
}

#[derive(Clone, Copy)]
struct Pos {
    line: u64,
    column: u64,
}

fn err(at: Pos, message: impl Into<String>) -> LogError {
    LogError::Xml {
        line: at.line,
        column: at.column,
        message: message.into(),
    }
}

struct Attrs {
    pairs: Vec<(String, String)>,
}

impl Attrs {
    fn of(e: &BytesStart<'_>, at: Pos) -> Result<Attrs, LogError> {
        let mut pairs = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|e| err(at, format!("bad attribute: {e}")))?;
            let key = a.key.into_inner().to_string();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| err(at, format!("attribute {key}: {e}")))?
                .into_owned();
            pairs.push((key, value));
        }
        Ok(Attrs { pairs })
    }

    fn check_known(&self, elem: &str, known: &[&str], at: Pos) -> Result<(), LogError> {
        for (k, _) in &self.pairs {
            if !known.contains(&k.as_str()) {
                return Err(err(at, format!("<{elem}>: unknown attribute {k}")));
            }
        }
        Ok(())
    }

    fn num(&self, elem: &str, key: &str, at: Pos) -> Result<Option<u64>, LogError> {
        match self.pairs.iter().find(|(k, _)| k == key) {
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

fn root(e: &BytesStart<'_>, at: Pos) -> Result<Root, LogError> {
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

fn dirty_range(
    e: &BytesStart<'_>,
    at: Pos,
    root: &Root,
    prev_end: u64,
) -> Result<Range<u64>, LogError> {
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
pub fn parse(input: impl BufRead) -> Result<LogSpec, LogError> {
    let mut reader = Reader::from_reader(LineCounter {
        inner: input,
        line: 1,
        line_start: 0,
        pos: 0,
    });
    reader.config_mut().trim_text(false);
    let mut buf = Vec::new();
    let mut root_seen: Option<Root> = None;
    let mut closed = false;
    let mut in_dirty = false;
    let mut dirty: Vec<Range<u64>> = Vec::new();
    loop {
        let at = {
            let c = reader.get_ref();
            Pos {
                line: c.line,
                column: c.pos - c.line_start + 1,
            }
        };
        buf.clear();
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| err(at, format!("malformed XML: {e}")))?;
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Text(t) => {
                let text: &str = t.as_ref();
                if !text.chars().all(char::is_whitespace) {
                    return Err(err(at, "unexpected text"));
                }
            }
            Event::Start(e) | Event::Empty(e) if !closed && root_seen.is_none() => {
                if e.name().into_inner() != "dirty_log" {
                    return Err(err(at, "the document must start with <dirty_log>"));
                }
                root_seen = Some(root(&e, at)?);
                closed = empty;
            }
            Event::Start(e) | Event::Empty(e) if !closed && !in_dirty => {
                let Some(r) = root_seen.as_ref() else {
                    return Err(err(at, "the document must start with <dirty_log>"));
                };
                if e.name().into_inner() != "dirty" {
                    let name = e.name().into_inner().to_string();
                    return Err(err(
                        at,
                        format!("unexpected element <{name}> in <dirty_log>"),
                    ));
                }
                let prev_end = dirty.last().map_or(0, |d| d.end);
                dirty.push(dirty_range(&e, at, r, prev_end)?);
                in_dirty = !empty;
            }
            Event::End(e) if in_dirty && e.name().into_inner() == "dirty" => in_dirty = false,
            Event::End(e) if !in_dirty && !closed && e.name().into_inner() == "dirty_log" => {
                closed = true
            }
            Event::CData(_) => return Err(err(at, "unexpected CDATA")),
            _ => return Err(err(at, "unexpected markup")),
        }
    }
    let at_end = {
        let c = reader.get_ref();
        Pos {
            line: c.line,
            column: c.pos - c.line_start + 1,
        }
    };
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
        assert!(e.starts_with("2:3: "), "{e}");
        let xml = "<dirty_log version=\"2\" nr_regions=\"16\">\n\n    <dirty begin=\"3\" end=\"17\"/>\n</dirty_log>";
        let e = parse(xml.as_bytes()).unwrap_err().to_string();
        assert!(
            e.starts_with("3:5: ") && e.contains("past the last region"),
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
