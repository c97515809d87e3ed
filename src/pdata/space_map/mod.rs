//! The metadata space map: a reference count for every metadata block, stored in the
//! metadata it describes (index block, bitmap blocks of 2-bit counts, overflow b-tree).

pub mod bitmap;
pub mod build;
pub mod check;
pub mod index;
pub mod root;

/// Entries (blocks) described by one bitmap block.
pub const ENTRIES_PER_BITMAP: u64 = 16_320;
/// Index entries in the single index block of a metadata space map.
pub const MAX_INDEX_ENTRIES: usize = 255;
/// The most blocks a metadata space map can describe; blocks past this are never used.
pub const MAX_METADATA_BLOCKS: u64 = MAX_INDEX_ENTRIES as u64 * ENTRIES_PER_BITMAP;
/// Value size of the overflow tree's leaves (`le32` counts).
pub const OVERFLOW_VALUE_SIZE: u32 = 4;
