//! Reading XML: one set of rules and one way of saying where, for every tool that reads
//! XML (`era_restore` and `log_restore`).
//!
//! It sits beside [`crate::pdata`], not inside it: pdata is the on-disk layer and knows
//! nothing of text, while this is the text layer both formats build on. Keeping it in one
//! module means a document one family rejects the other rejects too, and an error reads
//! the same whichever tool prints it.
//!
//! The rules. Both formats are written by our own dumps or by thin-provisioning-tools and
//! need nothing more than this:
//! - elements with attributes (values in double or single quotes), white space, comments;
//! - an XML declaration only as the very first thing (after an optional UTF-8 byte-order
//!   mark);
//! - no DOCTYPE, and so no entity declarations: the only references are the five
//!   predefined entities and character references, in attribute values only, kept as
//!   written (no value of either format has one);
//! - no CDATA, no processing instructions, no text other than white space;
//! - one construct (a tag, a comment, the declaration) at most [`markup::MAX_MARKUP`]
//!   bytes, so that the memory a reader takes never follows the input.
//!
//! Positions are 1-based lines and columns counted in bytes, printed `line L, column C`;
//! an error points at the start of the construct at fault, or at the end of the input.
//!
//! [`markup`] reads one construct from a buffer; [`reader`] streams a whole document from
//! any `Read`. The era reader drives [`markup`] itself, because it reads most lines
//! through a faster path of its own.

pub mod markup;
pub mod reader;

use std::fmt;

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {msg}")]
pub struct XmlError {
    /// Where the offending construct (or the end of input) starts.
    pub pos: Pos,
    /// What is wrong.
    pub msg: String,
}

/// The position of a reader in its input, kept up to date as bytes are consumed.
#[derive(Debug, Clone, Copy)]
pub struct Lines {
    line: u64,
    line_start: u64,
    offset: u64,
}

impl Default for Lines {
    fn default() -> Lines {
        Lines::new()
    }
}

impl Lines {
    /// The start of the input.
    pub fn new() -> Lines {
        Lines {
            line: 1,
            line_start: 0,
            offset: 0,
        }
    }

    /// Moves past `bytes`, the next bytes of the input.
    pub fn advance(&mut self, bytes: &[u8]) {
        if let Some(last) = memchr::memrchr(b'\n', bytes) {
            self.line += memchr::memchr_iter(b'\n', bytes).count() as u64;
            self.line_start = self.offset + last as u64 + 1;
        }
        self.offset += bytes.len() as u64;
    }

    /// Moves past `len` bytes that hold exactly `lines` line ends, the last one at their
    /// end.
    pub fn skip_lines(&mut self, lines: u64, len: u64) {
        self.offset += len;
        if lines > 0 {
            self.line += lines;
            self.line_start = self.offset;
        }
    }

    /// Where the next byte is.
    pub fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.offset - self.line_start + 1,
        }
    }

    /// Whether the next byte starts a line.
    pub fn at_line_start(&self) -> bool {
        self.offset == self.line_start
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// XML white space.
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_byte_columns() {
        let mut l = Lines::new();
        assert_eq!(l.pos().to_string(), "line 1, column 1");
        l.advance(b"ab\ncd\n  ");
        assert_eq!(l.pos(), Pos { line: 3, column: 3 });
        assert!(!l.at_line_start());
        l.advance(b"x\n");
        assert!(l.at_line_start());
        l.skip_lines(2, 10);
        assert_eq!(l.pos(), Pos { line: 6, column: 1 });
        assert_eq!(l.offset(), 20);
        let e = XmlError {
            pos: l.pos(),
            msg: "bad".into(),
        };
        assert_eq!(e.to_string(), "line 6, column 1: bad");
    }
}
