//! Writing fresh metadata: blocks handed out upward from a first free block, each sealed
//! with its kind's checksum and self-location as it is written.
//!
//! Nothing written through a [`BlockWriter`] is shared, so every block it hands out has a
//! reference count of exactly 1; the space-map builder relies on that.

use std::io;

use super::checksum::{self, BlockKind};
use super::io::{Block, BlockIo};

/// Allocates and writes the blocks of metadata being built from scratch.
pub struct BlockWriter<'a> {
    io: &'a dyn BlockIo,
    next: u64,
    limit: u64,
}

impl<'a> BlockWriter<'a> {
    /// A writer that hands out blocks `first..limit` of `io` in ascending order.
    pub fn new(io: &'a dyn BlockIo, first: u64, limit: u64) -> BlockWriter<'a> {
        BlockWriter {
            io,
            next: first,
            limit: limit.min(io.nr_blocks()),
        }
    }

    /// The device written to.
    pub fn io(&self) -> &'a dyn BlockIo {
        self.io
    }

    /// Blocks `0..end()` are in use: the ones handed out plus those below `first`.
    pub fn end(&self) -> u64 {
        self.next
    }

    /// Hands out the next free block.
    pub fn alloc(&mut self) -> io::Result<u64> {
        if self.next >= self.limit {
            return Err(io::Error::other(format!(
                "no free metadata block left ({} blocks)",
                self.limit
            )));
        }
        self.next += 1;
        Ok(self.next - 1)
    }

    /// Seals `block` as a `kind` block living at `loc` and writes it there.
    pub fn write(&mut self, kind: BlockKind, loc: u64, block: &mut Block) -> io::Result<()> {
        checksum::seal(block, kind, loc);
        self.io.write(loc, block)
    }

    /// Allocates a block, seals `block` for it and writes it; returns its location.
    pub fn write_new(&mut self, kind: BlockKind, block: &mut Block) -> io::Result<u64> {
        let loc = self.alloc()?;
        self.write(kind, loc, block)?;
        Ok(loc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::io::MemIo;

    #[test]
    fn hands_out_ascending_blocks_and_stops_at_the_limit() {
        let io = MemIo::new(4);
        let mut w = BlockWriter::new(&io, 1, 3);
        let mut b = Block::zeroed();
        assert_eq!(w.write_new(BlockKind::ARRAY_BLOCK, &mut b).unwrap(), 1);
        assert_eq!(w.alloc().unwrap(), 2);
        assert!(w.alloc().is_err());
        assert_eq!(w.end(), 3);
        let r = io.read_new(1).unwrap();
        assert_eq!(checksum::verify(&r, BlockKind::ARRAY_BLOCK, 1), Ok(()));
    }
}
