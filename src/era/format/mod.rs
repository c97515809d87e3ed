//! dm-era's on-disk format (docs/era-format.md): the superblock, the writesets and the era
//! array's values, and the one checksummed block kind of its own. The tools built on it
//! live beside this module, in [`crate::era`].

pub mod superblock;
pub mod writeset;

use crate::pdata::checksum::BlockKind;
use crate::pdata::unpack::Unpack;

/// The era superblock (block 0, or the held metadata snapshot's copy).
pub const SUPERBLOCK: BlockKind = BlockKind::superblock(146_538_381);

/// Every kind of checksummed block in era metadata, for naming a block found where another
/// kind was expected.
pub const BLOCK_KINDS: [BlockKind; 5] = [
    SUPERBLOCK,
    BlockKind::BTREE_NODE,
    BlockKind::ARRAY_BLOCK,
    BlockKind::SM_INDEX,
    BlockKind::SM_BITMAP,
];

/// Bytes per era-array value (one `le32` era per origin block, the era of the newest
/// digested writeset that marked it): readers walk it as an array of `u32`.
pub const ERA_VALUE_SIZE: u32 = <u32 as Unpack>::DISK_SIZE;
