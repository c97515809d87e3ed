//! Reading era XML in one pass, as fast as the input comes, each error located by line
//! and column.
//!
//! Accepts what `era_dump` writes (`<bit>` lines) and the compact `<marked>` ranges of
//! thin-provisioning-tools' tests, with or without an XML declaration, under the rules of
//! [`crate::xml`]. Structure and syntax are checked here; what the values mean is the
//! visitor's business.
//!
//! How: the calling thread reads the input in chunks that end at a line end; a thread of
//! the call digests each chunk on every core with [`super::fast`], which reads the `<bit>`
//! and `<era>` lines era_dump writes (nearly all of the bytes), while the calling thread
//! reads the next chunk and walks the previous one in order, handing the digested runs to
//! the visitor whole and reading every other line with the markup reader of
//! [`crate::xml`]. A construct that spans lines (a comment, a tag with its attributes on
//! several lines) is read by the markup reader to its end, whatever the digest made of the
//! lines inside it, and may continue into the next chunk. The digesting thread is scoped to
//! the call and never touches the input, so that a call that stops early, on an error or a
//! panic, joins it at once instead of leaving it behind or waiting on a terminal or a pipe
//! for more input. Memory: three chunks and their digests, whatever the input's size.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{self, ScopedJoinHandle};

use super::super::sink::Summary;
use super::fast::{self, Digest, Kind, Line, Run};
use crate::xml::markup::{lossy, scan, Markup, Scan, Tag};
use crate::xml::reader::BOM;
use crate::xml::{is_space, Lines, Pos};

pub use crate::xml::XmlError;

/// Why a visitor refused an element.
#[derive(Debug)]
pub enum VisitError {
    /// The element's content is wrong; the parser adds the position.
    Invalid(String),
    /// The visitor failed to store what it was given.
    Io(io::Error),
}

impl From<io::Error> for VisitError {
    fn from(e: io::Error) -> VisitError {
        VisitError::Io(e)
    }
}

/// Why parsing stopped, in its cause's words. An I/O error is the source, where the tools
/// look for it (a closed pipe, the file that failed).
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The input is not acceptable era XML.
    #[error(transparent)]
    Xml(XmlError),
    /// Reading the input failed.
    #[error("{0}")]
    Io(#[source] io::Error),
    /// The visitor failed to store what it was given.
    #[error("{0}")]
    Visit(#[source] io::Error),
}

/// Receives the elements of era XML in document order.
pub trait XmlVisitor {
    /// `<superblock>`.
    fn superblock(&mut self, header: Summary) -> Result<(), VisitError>;
    /// `<writeset>`.
    fn writeset_begin(&mut self, era: u32, nr_bits: u32) -> Result<(), VisitError>;
    /// `<bit>` inside a writeset.
    fn bit(&mut self, block: u32, value: bool) -> Result<(), VisitError>;
    /// Many `<bit>`s of the current writeset at once: the blocks of the set ones, and the
    /// largest block of the set and of the clear ones. All or nothing: `Ok(false)` refuses
    /// them without changing anything, and the parser hands them to
    /// [`XmlVisitor::bit`] one by one instead, so that an error names its line.
    fn bits(
        &mut self,
        _set: &[u32],
        _max_set: Option<u32>,
        _max_clear: Option<u32>,
    ) -> Result<bool, VisitError> {
        Ok(false)
    }
    /// `<marked>` inside a writeset: bits `begin .. begin + len` set.
    fn marked(&mut self, begin: u32, len: u32) -> Result<(), VisitError>;
    /// `</writeset>`.
    fn writeset_end(&mut self) -> Result<(), VisitError>;
    /// `<era_array>`.
    fn era_array_begin(&mut self) -> Result<(), VisitError>;
    /// `<era>` inside the era array.
    fn era(&mut self, block: u32, era: u32) -> Result<(), VisitError>;
    /// Many `<era>`s at once, for the blocks `first, first + 1, …`; `max_era` is the
    /// largest. All or nothing, as [`XmlVisitor::bits`].
    fn eras(&mut self, _first: u32, _eras: &[u32], _max_era: u32) -> Result<bool, VisitError> {
        Ok(false)
    }
    /// `</era_array>`.
    fn era_array_end(&mut self) -> Result<(), VisitError>;
    /// `</superblock>`.
    fn superblock_end(&mut self) -> Result<(), VisitError>;
}

/// How to read.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// Bytes read at a time (a line longer than this is read in pieces).
    pub chunk_size: usize,
    /// Whether `<bit>` and `<era>` lines take the fast path; without it every line goes
    /// through the markup reader (the same outcome, slower: for tests).
    pub fast: bool,
}

impl Default for ParseOptions {
    fn default() -> ParseOptions {
        ParseOptions {
            chunk_size: 4 << 20,
            fast: true,
        }
    }
}

/// The smallest chunk size used.
const MIN_CHUNK: usize = 64;

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

fn located(pos: Pos, f: Fail) -> ParseError {
    match f {
        Fail::Msg(msg) => ParseError::Xml(XmlError { pos, msg }),
        Fail::Io(e) => ParseError::Visit(e),
    }
}

/// The values of every attribute in `names`, in that order; any other attribute, a
/// missing one or a repeated one is an error.
fn attributes<'a, const N: usize>(t: &Tag<'a>, names: [&str; N]) -> Result<[&'a [u8]; N], String> {
    let found = t.attrs(names)?;
    let mut out: [&'a [u8]; N] = [&[]; N];
    for (i, f) in found.into_iter().enumerate() {
        out[i] = f.ok_or_else(|| format!("missing attribute '{}' in <{}>", names[i], t.name))?;
    }
    Ok(out)
}

/// A decimal `u32`: digits only, no sign, no white space.
fn number(tag: &str, name: &str, v: &[u8]) -> Result<u32, String> {
    if v.is_empty() || !v.iter().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "attribute '{name}' of <{tag}> is not a non-negative integer: '{}'",
            lossy(v)
        ));
    }
    let mut n: u32 = 0;
    for d in v {
        let Some(m) = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(d - b'0')))
        else {
            return Err(format!(
                "attribute '{name}' of <{tag}> does not fit in 32 bits: '{}'",
                lossy(v)
            ));
        };
        n = m;
    }
    Ok(n)
}

fn boolean(tag: &str, name: &str, v: &[u8]) -> Result<bool, String> {
    match v {
        b"true" => Ok(true),
        b"false" => Ok(false),
        _ => Err(format!(
            "attribute '{name}' of <{tag}> must be true or false: '{}'",
            lossy(v)
        )),
    }
}

/// The document's structure, whichever path an element came by.
struct Document<'v, V: XmlVisitor> {
    visitor: &'v mut V,
    state: State,
}

impl<V: XmlVisitor> Document<'_, V> {
    fn expect(&self, want: State, tag: &str) -> Result<(), Fail> {
        if self.state == want {
            Ok(())
        } else if tag == "superblock" && self.state == State::Done {
            Err(Fail::Msg("duplicated <superblock>".into()))
        } else {
            Err(Fail::Msg(format!(
                "<{tag}> is not allowed in {}",
                self.state.element()
            )))
        }
    }

    /// Takes a tag, or nothing for a comment or the XML declaration.
    fn markup(&mut self, m: Option<Markup>) -> Result<(), Fail> {
        match m {
            Some(Markup::Start(t)) => self.start(&t, false),
            Some(Markup::Empty(t)) => self.start(&t, true),
            Some(Markup::End(n)) => self.end(n),
            None => Ok(()),
        }
    }

    fn start(&mut self, t: &Tag, empty: bool) -> Result<(), Fail> {
        match t.name {
            "superblock" => {
                self.expect(State::Start, "superblock")?;
                let [_, bs, nb, ce] =
                    attributes(t, ["uuid", "block_size", "nr_blocks", "current_era"])?;
                let header = Summary {
                    block_size: number("superblock", "block_size", bs)?,
                    nr_blocks: number("superblock", "nr_blocks", nb)?,
                    current_era: number("superblock", "current_era", ce)?,
                };
                self.visitor.superblock(header)?;
                self.state = State::Superblock;
                if empty {
                    self.end("superblock")?;
                }
            }
            "writeset" => {
                self.expect(State::Superblock, "writeset")?;
                let [era, nr_bits] = attributes(t, ["era", "nr_bits"])?;
                let era = number("writeset", "era", era)?;
                let nr_bits = number("writeset", "nr_bits", nr_bits)?;
                self.visitor.writeset_begin(era, nr_bits)?;
                self.state = State::Writeset;
                if empty {
                    self.end("writeset")?;
                }
            }
            "era_array" => {
                self.expect(State::Superblock, "era_array")?;
                attributes(t, [])?;
                self.visitor.era_array_begin()?;
                self.state = State::EraArray;
                if empty {
                    self.end("era_array")?;
                }
            }
            "bit" | "marked" | "era" => {
                let tag = t.name;
                if tag == "era" {
                    self.expect(State::EraArray, tag)?;
                } else {
                    self.expect(State::Writeset, tag)?;
                }
                if !empty {
                    return Err(Fail::Msg(format!(
                        "<{tag}> must be an empty element (<{tag} …/>)"
                    )));
                }
                match tag {
                    "bit" => {
                        let [block, value] = attributes(t, ["block", "value"])?;
                        let block = number("bit", "block", block)?;
                        let value = boolean("bit", "value", value)?;
                        self.visitor.bit(block, value)?;
                    }
                    "marked" => {
                        let [begin, len] = attributes(t, ["block_begin", "len"])?;
                        let begin = number("marked", "block_begin", begin)?;
                        let len = number("marked", "len", len)?;
                        self.visitor.marked(begin, len)?;
                    }
                    _ => {
                        let [block, era] = attributes(t, ["block", "era"])?;
                        let block = number("era", "block", block)?;
                        let era = number("era", "era", era)?;
                        self.visitor.era(block, era)?;
                    }
                }
            }
            "dirty_log" => {
                return Err(Fail::Msg(
                    "unknown element <dirty_log>: this is the XML of log_dump (a mirror's disk \
                     log), which log_restore reads"
                        .into(),
                ))
            }
            other => return Err(Fail::Msg(format!("unknown element <{other}>"))),
        }
        Ok(())
    }

    /// A fast line: the same as its element read by [`Document::start`].
    fn item(&mut self, l: Line) -> Result<(), Fail> {
        match l {
            Line::Bit { block, value } => {
                self.expect(State::Writeset, "bit")?;
                self.visitor.bit(block, value)?;
            }
            Line::Era { block, era } => {
                self.expect(State::EraArray, "era")?;
                self.visitor.era(block, era)?;
            }
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

    fn finish(&self, at: Pos) -> Result<(), ParseError> {
        let msg = match self.state {
            State::Done => return Ok(()),
            State::Start => "no <superblock> element".to_string(),
            s => format!("unexpected end of input in {} (truncated?)", s.element()),
        };
        Err(ParseError::Xml(XmlError { pos: at, msg }))
    }
}

/// Where reading a chunk stopped.
enum Stop {
    /// Everything before this offset was read.
    At(usize),
    /// The construct at this offset goes on in the next chunk.
    Incomplete(usize),
}

/// Walks the chunks in order.
struct Walker<'v, V: XmlVisitor> {
    doc: Document<'v, V>,
    lines: Lines,
    doc_start: bool,
    /// The start of a construct that the last chunk ended in.
    carry: Vec<u8>,
}

impl<V: XmlVisitor> Walker<'_, V> {
    fn chunk(&mut self, chunk: &[u8], digests: &[Digest], eof: bool) -> Result<(), ParseError> {
        let joined;
        let shift = self.carry.len();
        let buf = if shift == 0 {
            chunk
        } else {
            let mut j = std::mem::take(&mut self.carry);
            j.extend_from_slice(chunk);
            joined = j;
            &joined[..]
        };
        // The construct carried over first.
        let mut stop = if shift > 0 {
            self.slow(buf, 0, shift, eof)?
        } else {
            Stop::At(0)
        };
        for d in digests {
            for run in &d.runs {
                let Stop::At(pos) = stop else {
                    break;
                };
                let (s, e) = (run.start + shift, run.end + shift);
                if e <= pos {
                    continue;
                }
                stop = match run.kind {
                    Kind::Slow => self.slow(buf, pos, e, eof)?,
                    // A construct read by the markup reader ran into this run.
                    _ if s < pos => self.slow(buf, pos, e, eof)?,
                    _ => self.fast(buf, s, e, run, d, eof)?,
                };
            }
        }
        if let Stop::At(pos) = stop {
            if pos < buf.len() {
                stop = self.slow(buf, pos, buf.len(), eof)?;
            }
        }
        if let Stop::Incomplete(p) = stop {
            self.carry = buf[p..].to_vec();
        }
        Ok(())
    }

    fn advance(&mut self, buf: &[u8], from: usize, to: usize) {
        self.lines.advance(&buf[from..to]);
        if to > from {
            self.doc_start = false;
        }
    }

    /// Reads `buf` from `pos` with the markup reader, up to the first line start at or
    /// after `min_end` (or the end of `buf`).
    fn slow(
        &mut self,
        buf: &[u8],
        mut pos: usize,
        min_end: usize,
        eof: bool,
    ) -> Result<Stop, ParseError> {
        loop {
            if self.doc_start && self.lines.offset() == 0 {
                let n = buf.len().min(BOM.len());
                if buf[..n] == BOM[..n] {
                    if n < BOM.len() && !eof {
                        return Ok(Stop::Incomplete(pos));
                    }
                    if n == BOM.len() {
                        self.lines.advance(BOM);
                        pos = n;
                    }
                }
            }
            while pos < buf.len() && is_space(buf[pos]) {
                if pos >= min_end && self.lines.at_line_start() {
                    return Ok(Stop::At(pos));
                }
                self.advance(buf, pos, pos + 1);
                pos += 1;
            }
            if pos == buf.len() || (pos >= min_end && self.lines.at_line_start()) {
                return Ok(Stop::At(pos));
            }
            let at = self.lines.pos();
            if buf[pos] != b'<' {
                let msg = format!("unexpected text in {}", self.doc.state.element());
                return Err(ParseError::Xml(XmlError { pos: at, msg }));
            }
            match scan(&buf[pos..], eof, self.doc_start) {
                Err(msg) => return Err(ParseError::Xml(XmlError { pos: at, msg })),
                Ok(Scan::Incomplete) => return Ok(Stop::Incomplete(pos)),
                Ok(Scan::Found(m, n)) => {
                    self.doc_start = false;
                    self.doc.markup(m).map_err(|f| located(at, f))?;
                    self.advance(buf, pos, pos + n);
                    pos += n;
                }
            }
        }
    }

    /// Hands a digested run to the visitor whole, or its lines one by one if it refuses.
    fn fast(
        &mut self,
        buf: &[u8],
        s: usize,
        e: usize,
        run: &Run,
        d: &Digest,
        eof: bool,
    ) -> Result<Stop, ParseError> {
        let at = self.lines.pos();
        let whole = match &run.kind {
            Kind::Bits {
                set,
                max_set,
                max_clear,
            } if self.doc.state == State::Writeset => {
                self.doc
                    .visitor
                    .bits(&d.set[set.clone()], *max_set, *max_clear)
            }
            Kind::Eras {
                values,
                first,
                contiguous: true,
                max_era,
            } if self.doc.state == State::EraArray => {
                self.doc
                    .visitor
                    .eras(*first, &d.eras[values.clone()], *max_era)
            }
            _ => Ok(false),
        };
        if whole.map_err(|v| located(at, v.into()))? {
            self.lines.skip_lines(run.lines, (e - s) as u64);
            self.doc_start = false;
            return Ok(Stop::At(e));
        }
        let mut p = s;
        while p < e {
            let Some((l, len, indent)) = fast::line(&buf[p..e]) else {
                return self.slow(buf, p, e, eof);
            };
            self.advance(buf, p, p + indent);
            let at = self.lines.pos();
            self.doc.item(l).map_err(|f| located(at, f))?;
            self.advance(buf, p + indent, p + len);
            p += len;
        }
        Ok(Stop::At(e))
    }
}

/// A piece of the input, ending at a line end unless it is the last or a line is longer
/// than a chunk.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
    /// Bytes new in this chunk (the rest was carried over from the previous one).
    read: usize,
    eof: bool,
    /// Whether the chunk starts in the middle of a line.
    mid_line: bool,
}

/// Cuts the input into chunks of at most `size` bytes that end at a line end.
struct ChunkReader {
    input: Box<dyn Read + Send>,
    size: usize,
    /// The bytes after the last line end of the previous chunk.
    tail: Vec<u8>,
    mid_line: bool,
}

impl ChunkReader {
    /// The next chunk, in `buf` (whatever it held).
    fn next(&mut self, mut buf: Vec<u8>) -> io::Result<Chunk> {
        let size = self.size;
        buf.resize(size, 0);
        let kept = self.tail.len();
        buf[..kept].copy_from_slice(&self.tail);
        let mut len = kept;
        let mut eof = false;
        while len < size {
            match self.input.read(&mut buf[len..size]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.tail.clear();
        let mut chunk_len = len;
        if !eof {
            if let Some(nl) = memchr::memrchr(b'\n', &buf[..len]) {
                self.tail.extend_from_slice(&buf[nl + 1..len]);
                chunk_len = nl + 1;
            }
        }
        let chunk = Chunk {
            buf,
            len: chunk_len,
            read: len - kept,
            eof,
            mid_line: self.mid_line,
        };
        if chunk_len > 0 {
            self.mid_line = chunk.buf[chunk_len - 1] != b'\n';
        }
        Ok(chunk)
    }
}

/// The runs of a chunk: from [`fast::digest_chunk`], or one run for the markup reader.
fn digest(c: &Chunk, fast_path: bool) -> Vec<Digest> {
    if fast_path {
        return fast::digest_chunk(&c.buf[..c.len], c.mid_line);
    }
    vec![Digest {
        runs: vec![Run {
            start: 0,
            end: c.len,
            lines: 0,
            kind: Kind::Slow,
        }],
        ..Digest::default()
    }]
}

/// Digests the chunks from `input` and passes them on, until either side hangs up. Only
/// CPU work: it never waits on the input, so joining it never does either.
fn digest_chunks(input: Receiver<Chunk>, out: SyncSender<(Chunk, Vec<Digest>)>, fast_path: bool) {
    for c in input {
        let d = digest(&c, fast_path);
        if out.send((c, d)).is_err() {
            return;
        }
    }
}

/// Chunks read ahead of the one walked, once the first has been walked: one digested while
/// the walk goes on, and one read meanwhile.
const AHEAD: usize = 2;

/// Parses era XML from `input`, handing each element to `visitor`, and `progress` the
/// bytes read. Stops at the first problem, naming its line and column.
///
/// A thread digests chunks while this one reads the next and walks the previous; it is
/// joined before this returns, whatever the outcome. The input is read on the calling
/// thread only, so that nothing is left waiting on it. The first chunk is walked before
/// more input is read, so that an input that is not era XML is refused without waiting
/// for more of it; after it, an error is reported once the two chunks that follow (or the
/// end) have been read.
pub fn parse<V: XmlVisitor>(
    input: Box<dyn Read + Send>,
    visitor: &mut V,
    opts: &ParseOptions,
    progress: &dyn Fn(u64),
) -> Result<(), ParseError> {
    let reader = ChunkReader {
        input,
        size: opts.chunk_size.max(MIN_CHUNK),
        tail: Vec::new(),
        mid_line: false,
    };
    let mut w = Walker {
        doc: Document {
            visitor,
            state: State::Start,
        },
        lines: Lines::new(),
        doc_start: true,
        carry: Vec::new(),
    };
    let fast_path = opts.fast;
    thread::scope(|s| {
        let (raw_tx, raw_rx) = sync_channel::<Chunk>(1);
        let (dig_tx, dig_rx) = sync_channel(1);
        let digester = thread::Builder::new()
            .name("era-xml-digest".into())
            .spawn_scoped(s, move || digest_chunks(raw_rx, dig_tx, fast_path))
            .map_err(ParseError::Io)?;
        let digester = Joined(Some(digester));
        let feed = Feed {
            reader,
            to_digest: raw_tx,
            spare: Vec::new(),
            in_flight: 0,
            ended: false,
        };
        // `walk` owns this side of both channels: however it ends, returning or unwinding,
        // it hangs up on the digester, which then ends, so that the join cannot wait.
        let result = walk(&mut w, feed, dig_rx, progress);
        digester.join();
        result
    })
}

/// A scoped thread that is joined, not only waited for. The scope itself waits only until
/// the thread's closure has returned; the thread's thread-local values (a channel's waiting
/// context, rayon's latch) are freed after that, and a call that returned before then
/// would leave them behind for a moment.
struct Joined<'s>(Option<ScopedJoinHandle<'s, ()>>);

impl Joined<'_> {
    /// Joins the thread, passing a panic of it on.
    fn join(mut self) {
        if let Some(Err(panic)) = self.0.take().map(ScopedJoinHandle::join) {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Joined<'_> {
    /// On the way out of a panic of the calling thread, which goes on.
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

/// Hands the chunks to the digester and walks them as they come back, in order.
fn walk<V: XmlVisitor>(
    w: &mut Walker<'_, V>,
    mut feed: Feed,
    digested: Receiver<(Chunk, Vec<Digest>)>,
    progress: &dyn Fn(u64),
) -> Result<(), ParseError> {
    feed.fill(1)?;
    let mut first = true;
    loop {
        let (c, digests) = digested.recv().map_err(|_| digester_gone())?;
        feed.in_flight -= 1;
        // Reading ahead would wait on a terminal or a pipe before the first chunk, the one
        // that tells whether the input is era XML at all, has been looked at.
        if !first {
            feed.fill(AHEAD)?;
        }
        progress(c.read as u64);
        w.chunk(&c.buf[..c.len], &digests, c.eof)?;
        if c.eof {
            return w.doc.finish(w.lines.pos());
        }
        feed.spare.push(c.buf);
        // Only after the first chunk is nothing in flight here.
        feed.fill(1)?;
        first = false;
    }
}

/// Sends the chunks read to the digester.
struct Feed {
    reader: ChunkReader,
    to_digest: SyncSender<Chunk>,
    /// Buffers of chunks walked, for the next ones.
    spare: Vec<Vec<u8>>,
    /// Chunks sent and not yet back.
    in_flight: usize,
    /// Whether the last chunk has been read.
    ended: bool,
}

impl Feed {
    /// Reads and sends chunks until `n` are in flight or the input has ended.
    fn fill(&mut self, n: usize) -> Result<(), ParseError> {
        while self.in_flight < n && !self.ended {
            let buf = self.spare.pop().unwrap_or_default();
            let c = self.reader.next(buf).map_err(ParseError::Io)?;
            self.ended = c.eof;
            self.to_digest.send(c).map_err(|_| digester_gone())?;
            self.in_flight += 1;
        }
        Ok(())
    }
}

/// What a hang-up of the digester means: it panicked, and the scope passes the panic on.
fn digester_gone() -> ParseError {
    ParseError::Io(io::Error::other("the XML digest thread stopped"))
}
