//! The space-map root blob that the superblock carries.

use byteorder::{ByteOrder, LittleEndian as LE};

/// Bytes the superblock reserves for the root; only the first 32 are used.
pub const SM_ROOT_SIZE: usize = 128;

/// Where a space map lives and how full it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmRoot {
    /// Blocks tracked.
    pub nr_blocks: u64,
    /// Blocks whose count is not zero.
    pub nr_allocated: u64,
    /// For the metadata space map: the index block.
    pub bitmap_root: u64,
    /// Root of the overflow reference-count tree.
    pub ref_count_root: u64,
}

impl SmRoot {
    /// Decodes the blob.
    pub fn unpack(b: &[u8]) -> SmRoot {
        SmRoot {
            nr_blocks: LE::read_u64(&b[0..]),
            nr_allocated: LE::read_u64(&b[8..]),
            bitmap_root: LE::read_u64(&b[16..]),
            ref_count_root: LE::read_u64(&b[24..]),
        }
    }

    /// Encodes the blob, zeroing its unused tail.
    pub fn pack(&self, b: &mut [u8]) {
        LE::write_u64(&mut b[0..], self.nr_blocks);
        LE::write_u64(&mut b[8..], self.nr_allocated);
        LE::write_u64(&mut b[16..], self.bitmap_root);
        LE::write_u64(&mut b[24..], self.ref_count_root);
        b[32..SM_ROOT_SIZE].fill(0);
    }
}
