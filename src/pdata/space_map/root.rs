//! The space-map root blob that the superblock carries.

use crate::pdata::layout::{field_via_pack, layout};

/// Bytes the superblock reserves for the root; only the first 32 are used.
pub const SM_ROOT_SIZE: usize = 128;

layout! {
    /// Where a space map lives and how full it is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SmRoot {
        /// Blocks tracked.
        pub nr_blocks: u64 @ 0,
        /// Blocks whose count is not zero.
        pub nr_allocated: u64 @ 8,
        /// For the metadata space map: the index block.
        pub bitmap_root: u64 @ 16,
        /// Root of the overflow reference-count tree.
        pub ref_count_root: u64 @ 24,
    }
}

impl SmRoot {
    /// Decodes the blob.
    pub fn unpack(b: &[u8]) -> SmRoot {
        SmRoot::unpack_fields(b)
    }

    /// Encodes the blob, zeroing its unused tail.
    pub fn pack(&self, b: &mut [u8]) {
        self.pack_fields(b);
        b[SmRoot::FIELDS_END..SM_ROOT_SIZE].fill(0);
    }
}

// The superblock holds the whole reserved blob, tail included.
field_via_pack!(SmRoot, SM_ROOT_SIZE);
