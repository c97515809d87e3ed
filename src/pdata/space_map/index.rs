//! The index block of the metadata space map: one entry per bitmap block.

use byteorder::{ByteOrder, LittleEndian as LE};

use super::MAX_INDEX_ENTRIES;
use crate::pdata::layout::layout;

const ENTRIES_OFFSET: usize = 16;
// Entries lie back to back.
const ENTRY_SIZE: usize = IndexEntry::FIELDS_END;

layout! {
    /// Describes one bitmap block.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct IndexEntry {
        /// Location of the bitmap block; 0 for an unused entry.
        pub blocknr: u64 @ 0,
        /// Entries of the bitmap with count 0.
        pub nr_free: u32 @ 8,
        /// A search hint: no entry below it is free.
        pub none_free_before: u32 @ 12,
    }
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
            .map(|i| IndexEntry::unpack_fields(&b[ENTRIES_OFFSET + i * ENTRY_SIZE..]))
            .collect();
        IndexBlock { entries }
    }

    /// Encodes the entries (missing ones as zero) into an index block.
    pub fn pack(&self, b: &mut [u8]) {
        LE::write_u32(&mut b[4..], 0);
        for i in 0..MAX_INDEX_ENTRIES {
            let e = self.entries.get(i).copied().unwrap_or_default();
            e.pack_fields(&mut b[ENTRIES_OFFSET + i * ENTRY_SIZE..]);
        }
    }
}
