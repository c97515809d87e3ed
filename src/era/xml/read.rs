//! Reading era XML as a stream of checked elements, each error located by line and column.
//!
//! Accepts what `era_dump` writes (`<bit>` lines) and the compact `<marked>` ranges of
//! thin-provisioning-tools' tests, with or without an XML declaration. Structure and
//! syntax are checked here; what the values mean is the visitor's business.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::super::sink::Header;

/// A place in the input: 1-based line and column (in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Line, from 1.
    pub line: u64,
    /// Column in bytes, from 1.
    pub column: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Bad input, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    /// Where the offending element (or the end of input) starts.
    pub pos: Pos,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.msg)
    }
}

impl std::error::Error for XmlError {}

/// Why a visitor refused an element.
#[derive(Debug)]
pub enum VisitError {
    /// The element's content is wrong; the parser adds the position.
    Invalid(String),
    /// The visitor failed to write what it built.
    Io(io::Error),
}

impl From<io::Error> for VisitError {
    fn from(e: io::Error) -> VisitError {
        VisitError::Io(e)
    }
}

/// Why parsing stopped.
#[derive(Debug)]
pub enum ParseError {
    /// The input is not acceptable era XML.
    Xml(XmlError),
    /// Reading the input, or the visitor's writing, failed.
    Io(io::Error),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Xml(e) => e.fmt(f),
            ParseError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ParseError::Xml(e) => Some(e),
            ParseError::Io(e) => Some(e),
        }
    }
}

/// Receives the elements of era XML in document order.
pub trait XmlVisitor {
    /// `<superblock>`.
    fn superblock(&mut self, header: Header) -> Result<(), VisitError>;
    /// `<writeset>`.
    fn writeset_begin(&mut self, era: u32, nr_bits: u32) -> Result<(), VisitError>;
    /// `<bit>` inside a writeset.
    fn bit(&mut self, block: u32, value: bool) -> Result<(), VisitError>;
    /// `<marked>` inside a writeset: bits `begin .. begin + len` set.
    fn marked(&mut self, begin: u32, len: u32) -> Result<(), VisitError>;
    /// `</writeset>`.
    fn writeset_end(&mut self) -> Result<(), VisitError>;
    /// `<era_array>`.
    fn era_array_begin(&mut self) -> Result<(), VisitError>;
    /// `<era>` inside the era array.
    fn era(&mut self, block: u32, era: u32) -> Result<(), VisitError>;
    /// `</era_array>`.
    fn era_array_end(&mut self) -> Result<(), VisitError>;
    /// `</superblock>`.
    fn superblock_end(&mut self) -> Result<(), VisitError>;
}

/// A `BufRead` that knows the line and column of everything consumed so far.
struct Counting<R> {
    inner: R,
    line: u64,
    line_start: u64,
    offset: u64,
}

impl<R: BufRead> Counting<R> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.offset - self.line_start + 1,
        }
    }
}

impl<R: BufRead> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        // The inner buffer still holds what is being consumed: fill_buf on a non-empty
        // buffer returns it without reading.
        if let Ok(buf) = self.inner.fill_buf() {
            let done = &buf[..n.min(buf.len())];
            if let Some(last) = memchr::memrchr(b'\n', done) {
                self.line += memchr::memchr_iter(b'\n', done).count() as u64;
                self.line_start = self.offset + last as u64 + 1;
            }
        }
        self.offset += n as u64;
        self.inner.consume(n);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Superblock,
    Writeset,
    EraArray,
    Done,
}

impl State {
    fn element(self) -> &'static str {
        match self {
            State::Start | State::Done => "the document",
            State::Superblock => "<superblock>",
            State::Writeset => "<writeset>",
            State::EraArray => "<era_array>",
        }
    }
}

/// The value of every attribute in `names`, in that order; any other attribute, a
/// missing one or a repeated one is an error.
fn attributes<'a, const N: usize>(
    e: &'a BytesStart<'a>,
    tag: &str,
    names: [&str; N],
) -> Result<[Cow<'a, str>; N], String> {
    let mut found: [Option<Cow<'a, str>>; N] = std::array::from_fn(|_| None);
    // quick-xml's own duplicate check allocates per element; with a handful of known
    // names a duplicate is simply a name seen twice.
    for a in e.attributes().with_checks(false) {
        let a = a.map_err(|err| format!("bad attribute in <{tag}>: {err}"))?;
        let key = a.key.as_ref();
        let Some(i) = names.iter().position(|n| *n == key) else {
            return Err(format!("unknown attribute '{key}' in <{tag}>"));
        };
        if found[i].replace(a.value).is_some() {
            return Err(format!("duplicated attribute '{key}' in <{tag}>"));
        }
    }
    let mut out: [Cow<'a, str>; N] = std::array::from_fn(|_| Cow::Borrowed(""));
    for (i, f) in found.into_iter().enumerate() {
        out[i] = f.ok_or_else(|| format!("missing attribute '{}' in <{tag}>", names[i]))?;
    }
    Ok(out)
}

/// A decimal `u32`: digits only, no sign, no white space.
fn number(tag: &str, name: &str, v: &str) -> Result<u32, String> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "attribute '{name}' of <{tag}> is not a non-negative integer: '{v}'"
        ));
    }
    let mut n: u64 = 0;
    for d in v.bytes() {
        n = n * 10 + (d - b'0') as u64;
        if n > u32::MAX as u64 {
            return Err(format!(
                "attribute '{name}' of <{tag}> does not fit in 32 bits: '{v}'"
            ));
        }
    }
    Ok(n as u32)
}

fn boolean(tag: &str, name: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!(
            "attribute '{name}' of <{tag}> must be true or false: '{v}'"
        )),
    }
}

struct Parser<'v, V: XmlVisitor> {
    visitor: &'v mut V,
    state: State,
}

enum Fail {
    Msg(String),
    Io(io::Error),
}

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail::Msg(s)
    }
}

impl From<VisitError> for Fail {
    fn from(e: VisitError) -> Fail {
        match e {
            VisitError::Invalid(s) => Fail::Msg(s),
            VisitError::Io(e) => Fail::Io(e),
        }
    }
}

impl<V: XmlVisitor> Parser<'_, V> {
    fn start(&mut self, e: &BytesStart, empty: bool) -> Result<(), Fail> {
        let name = e.name();
        let name = name.as_ref();
        let expect = |want: State, tag: &str, s: State| -> Result<(), Fail> {
            if s == want {
                Ok(())
            } else if tag == "superblock" && s == State::Done {
                Err(Fail::Msg("duplicated <superblock>".into()))
            } else {
                Err(Fail::Msg(format!(
                    "<{tag}> is not allowed in {}",
                    s.element()
                )))
            }
        };
        match name {
            "superblock" => {
                expect(State::Start, "superblock", self.state)?;
                let [_, bs, nb, ce] = attributes(
                    e,
                    "superblock",
                    ["uuid", "block_size", "nr_blocks", "current_era"],
                )?;
                let header = Header {
                    block_size: number("superblock", "block_size", &bs)?,
                    nr_blocks: number("superblock", "nr_blocks", &nb)?,
                    current_era: number("superblock", "current_era", &ce)?,
                };
                self.visitor.superblock(header)?;
                self.state = State::Superblock;
                if empty {
                    self.end("superblock")?;
                }
            }
            "writeset" => {
                expect(State::Superblock, "writeset", self.state)?;
                let [era, nr_bits] = attributes(e, "writeset", ["era", "nr_bits"])?;
                let era = number("writeset", "era", &era)?;
                let nr_bits = number("writeset", "nr_bits", &nr_bits)?;
                self.visitor.writeset_begin(era, nr_bits)?;
                self.state = State::Writeset;
                if empty {
                    self.end("writeset")?;
                }
            }
            "era_array" => {
                expect(State::Superblock, "era_array", self.state)?;
                attributes(e, "era_array", [])?;
                self.visitor.era_array_begin()?;
                self.state = State::EraArray;
                if empty {
                    self.end("era_array")?;
                }
            }
            "bit" | "marked" | "era" => {
                let tag = name;
                let parent = if name == "era" {
                    State::EraArray
                } else {
                    State::Writeset
                };
                expect(parent, tag, self.state)?;
                if !empty {
                    return Err(Fail::Msg(format!(
                        "<{tag}> must be an empty element (<{tag} …/>)"
                    )));
                }
                match name {
                    "bit" => {
                        let [block, value] = attributes(e, "bit", ["block", "value"])?;
                        let block = number("bit", "block", &block)?;
                        let value = boolean("bit", "value", &value)?;
                        self.visitor.bit(block, value)?;
                    }
                    "marked" => {
                        let [begin, len] = attributes(e, "marked", ["block_begin", "len"])?;
                        let begin = number("marked", "block_begin", &begin)?;
                        let len = number("marked", "len", &len)?;
                        self.visitor.marked(begin, len)?;
                    }
                    _ => {
                        let [block, era] = attributes(e, "era", ["block", "era"])?;
                        let block = number("era", "block", &block)?;
                        let era = number("era", "era", &era)?;
                        self.visitor.era(block, era)?;
                    }
                }
            }
            other => return Err(Fail::Msg(format!("unknown element <{other}>"))),
        }
        Ok(())
    }

    fn end(&mut self, name: &str) -> Result<(), Fail> {
        let (want, next): (&str, State) = match self.state {
            State::Superblock => ("superblock", State::Done),
            State::Writeset => ("writeset", State::Superblock),
            State::EraArray => ("era_array", State::Superblock),
            State::Start | State::Done => ("", self.state),
        };
        if want != name {
            return Err(Fail::Msg(format!(
                "unexpected </{name}> in {}",
                self.state.element()
            )));
        }
        match self.state {
            State::Superblock => self.visitor.superblock_end()?,
            State::Writeset => self.visitor.writeset_end()?,
            _ => self.visitor.era_array_end()?,
        }
        self.state = next;
        Ok(())
    }
}

/// Parses era XML from `input`, handing each element to `visitor`. Stops at the first
/// problem, naming its line and column.
pub fn parse<R: BufRead, V: XmlVisitor>(input: R, visitor: &mut V) -> Result<(), ParseError> {
    let counting = Counting {
        inner: input,
        line: 1,
        line_start: 0,
        offset: 0,
    };
    let mut reader = Reader::from_reader(counting);
    let mut p = Parser {
        visitor,
        state: State::Start,
    };
    let mut buf = Vec::with_capacity(256);
    let mut first = true;
    loop {
        buf.clear();
        let pos = reader.get_ref().pos();
        let fail = |msg: String| ParseError::Xml(XmlError { pos, msg });
        let event = match reader.read_event_into(&mut buf) {
            Ok(ev) => ev,
            Err(quick_xml::Error::Io(e)) => {
                return Err(ParseError::Io(io::Error::new(e.kind(), e.to_string())))
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        let r = match event {
            Event::Start(e) => p.start(&e, false),
            Event::Empty(e) => p.start(&e, true),
            Event::End(e) => p.end(e.name().as_ref()),
            Event::Text(t) if t.bytes().all(|b| b.is_ascii_whitespace()) => Ok(()),
            Event::Text(_) | Event::GeneralRef(_) => Err(Fail::Msg(format!(
                "unexpected text in {}",
                p.state.element()
            ))),
            Event::Comment(_) => Ok(()),
            Event::Decl(_) if first => Ok(()),
            Event::Decl(_) => Err(Fail::Msg(
                "an XML declaration is allowed only at the start".into(),
            )),
            Event::CData(_) => Err(Fail::Msg("unsupported CDATA section".into())),
            Event::PI(_) => Err(Fail::Msg("unsupported processing instruction".into())),
            Event::DocType(_) => Err(Fail::Msg("unsupported DOCTYPE".into())),
            Event::Eof => {
                return match p.state {
                    State::Done => Ok(()),
                    State::Start => Err(fail("no <superblock> element".into())),
                    s => Err(fail(format!(
                        "unexpected end of input in {} (truncated?)",
                        s.element()
                    ))),
                }
            }
        };
        match r {
            Ok(()) => {}
            Err(Fail::Msg(m)) => return Err(fail(m)),
            Err(Fail::Io(e)) => return Err(ParseError::Io(e)),
        }
        first = false;
    }
}
