//! The index block of the metadata space map: one entry per bitmap block.

use byteorder::{ByteOrder, LittleEndian as LE};

use super::MAX_INDEX_ENTRIES;

const ENTRIES_OFFSET: usize = 16;
const ENTRY_SIZE: usize = 16;

/// Describes one bitmap block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexEntry {
    /// Location of the bitmap block; 0 for an unused entry.
    pub blocknr: u64,
    /// Entries of the bitmap with count 0.
    pub nr_free: u32,
    /// A search hint: no entry below it is free.
    pub none_free_before: u32,
}

/// The index block's entries (its checksum and location are handled by `checksum`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexBlock {
    /// All 255 entries, used or not.
    pub entries: Vec<IndexEntry>,
}

impl IndexBlock {
    /// Decodes an index block.
    pub fn unpack(b: &[u8]) -> IndexBlock {
        let entries = (0..MAX_INDEX_ENTRIES)
            .map(|i| {
                let e = &b[ENTRIES_OFFSET + i * ENTRY_SIZE..];
                IndexEntry {
                    blocknr: LE::read_u64(e),
                    nr_free: LE::read_u32(&e[8..]),
                    none_free_before: LE::read_u32(&e[12..]),
                }
            })
            .collect();
        IndexBlock { entries }
    }

    /// Encodes the entries (missing ones as zero) into an index block.
    pub fn pack(&self, b: &mut [u8]) {
        LE::write_u32(&mut b[4..], 0);
        for i in 0..MAX_INDEX_ENTRIES {
            let e = self.entries.get(i).copied().unwrap_or_default();
            let o = ENTRIES_OFFSET + i * ENTRY_SIZE;
            LE::write_u64(&mut b[o..], e.blocknr);
            LE::write_u32(&mut b[o + 8..], e.nr_free);
            LE::write_u32(&mut b[o + 12..], e.none_free_before);
        }
    }
}
