//! A whole document from any `Read`, one element at a time, in bounded memory: white space
//! and comments are skipped, the rules of [`crate::xml`] enforced, every event located.

use std::io::{self, Read};

use super::markup::{lossy, scan, Markup, Scan, MAX_MARKUP};
use super::{is_space, Lines, Pos, XmlError};

/// Bytes read from the input at a time.
const READ_SIZE: usize = 1 << 16;

/// The UTF-8 byte-order mark, accepted at the very start.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the document holds next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A tag.
    Markup(Markup<'a>),
    /// Text other than white space (neither format has any): the caller says why it is
    /// wrong. It is skipped up to the next `<`.
    Text,
    /// The end of the input.
    Eof,
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The input is not acceptable XML.
    #[error(transparent)]
    Xml(XmlError),
    /// Reading the input failed.
    #[error("{0}")]
    Io(#[source] io::Error),
}

/// Reads a document event by event.
pub struct Reader<R> {
    input: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    lines: Lines,
    doc_start: bool,
    in_text: bool,
}

impl<R: Read> Reader<R> {
    /// A reader at the start of `input`.
    pub fn new(input: R) -> Reader<R> {
        Reader {
            input,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            lines: Lines::new(),
            doc_start: true,
            in_text: false,
        }
    }

    /// Where the next unread byte is (after an [`Event::Eof`], the end of the input).
    pub fn pos(&self) -> Pos {
        self.lines.pos()
    }

    /// Reads more input after what is buffered; sets `eof` at its end.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.end + READ_SIZE {
            self.buf.resize(self.end + READ_SIZE, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.lines.advance(&self.buf[self.start..self.start + n]);
        self.start += n;
    }

    /// The next event and where it starts.
    pub fn next_event(&mut self) -> Result<(Pos, Event<'_>), ReadError> {
        let (pos, start, len) = loop {
            let avail = &self.buf[self.start..self.end];
            if self.in_text {
                // The rest of a text already reported.
                let text = memchr::memchr(b'<', avail).unwrap_or(avail.len());
                self.in_text = text == avail.len();
                self.consume(text);
                if self.in_text {
                    if self.eof {
                        self.in_text = false;
                    } else {
                        self.fill().map_err(ReadError::Io)?;
                    }
                }
                continue;
            }
            if self.doc_start && avail.len() < BOM.len() && !self.eof && BOM.starts_with(avail) {
                self.fill().map_err(ReadError::Io)?;
                continue;
            }
            if self.doc_start && avail.starts_with(BOM) {
                self.consume(BOM.len());
                continue;
            }
            let ws = avail
                .iter()
                .position(|&b| !is_space(b))
                .unwrap_or(avail.len());
            if ws > 0 {
                self.doc_start = false;
                self.consume(ws);
            }
            if self.start == self.end {
                if self.eof {
                    return Ok((self.lines.pos(), Event::Eof));
                }
                self.fill().map_err(ReadError::Io)?;
                continue;
            }
            let pos = self.lines.pos();
            let avail = &self.buf[self.start..self.end];
            if avail[0] != b'<' {
                self.doc_start = false;
                self.in_text = true;
                return Ok((pos, Event::Text));
            }
            match scan(avail, self.eof, self.doc_start) {
                Err(msg) => return Err(ReadError::Xml(XmlError { pos, msg })),
                Ok(Scan::Incomplete) => self.fill().map_err(ReadError::Io)?,
                Ok(Scan::Found(None, n)) => {
                    self.doc_start = false;
                    self.consume(n);
                }
                Ok(Scan::Found(_, n)) => {
                    self.doc_start = false;
                    let start = self.start;
                    self.consume(n);
                    break (pos, start, n);
                }
            }
        };
        // Read again, now that the position has moved on: the construct is whole and small.
        let event = match scan(&self.buf[start..start + len], true, false) {
            Ok(Scan::Found(Some(m), _)) => Event::Markup(m),
            _ => {
                return Err(ReadError::Xml(XmlError {
                    pos,
                    msg: format!(
                        "unreadable markup '{}'",
                        lossy(&self.buf[start..start + len.min(MAX_MARKUP)])
                    ),
                }))
            }
        };
        Ok((pos, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Read` that hands out one byte at a time, so every construct is split.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    fn events(doc: &[u8]) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for trickle in [false, true] {
            let mut seen = Vec::new();
            let input: Box<dyn Read> = if trickle {
                Box::new(Trickle(doc))
            } else {
                Box::new(doc)
            };
            let mut r = Reader::new(input);
            loop {
                let (pos, e) = r.next_event().map_err(|e| e.to_string())?;
                let s = match e {
                    Event::Markup(Markup::Start(t)) => {
                        format!("{}:{} <{}>", pos.line, pos.column, t.name)
                    }
                    Event::Markup(Markup::Empty(t)) => {
                        format!("{}:{} <{}/>", pos.line, pos.column, t.name)
                    }
                    Event::Markup(Markup::End(n)) => format!("{}:{} </{n}>", pos.line, pos.column),
                    Event::Text => format!("{}:{} text", pos.line, pos.column),
                    Event::Eof => format!("{}:{} eof", pos.line, pos.column),
                };
                let eof = e == Event::Eof;
                seen.push(s);
                if eof {
                    break;
                }
            }
            if trickle {
                assert_eq!(seen, out, "byte by byte reads the same");
            } else {
                out = seen;
            }
        }
        Ok(out)
    }

    #[test]
    fn events_with_positions_whatever_the_reads() {
        let doc = b"\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- c\n -->\n<a x=\"1\">\n  <b\n   y='2'/> hi <c/>\n</a>\n";
        assert_eq!(
            events(doc).unwrap(),
            vec![
                "4:1 <a>",
                "5:3 <b/>",
                "6:12 text",
                "6:15 <c/>",
                "7:1 </a>",
                "8:1 eof"
            ]
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = events(b"<a>\n  <!DOCTYPE a>").unwrap_err();
        assert!(
            e.starts_with("line 2, column 3: unsupported DOCTYPE"),
            "{e}"
        );
        let e = events(b" <?xml version=\"1.0\"?><a/>").unwrap_err();
        assert!(e.contains("only at the start"), "{e}");
        let e = events(b"<a>\n<b x=\"1\"").unwrap_err();
        assert!(
            e.starts_with("line 2, column 1: unexpected end of input"),
            "{e}"
        );
    }
}
