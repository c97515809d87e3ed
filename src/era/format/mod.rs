//! dm-era's on-disk format (docs/era-format.md): the superblock, the writesets and the era
//! array's values, and the one checksummed block kind of its own. The tools built on it
//! live beside this module, in [`crate::era`].

pub mod superblock;
pub mod writeset;

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::identify::{Format, State};
use crate::pdata::checksum::{BlockKind, SuperblockDef};
use crate::pdata::unpack::Unpack;
use superblock::{MAGIC_OFFSET, SUPERBLOCK_MAGIC};

/// The era superblock (block 0, or the held metadata snapshot's copy).
pub const SUPERBLOCK: BlockKind = BlockKind::superblock(&SUPERBLOCK_DEF);
static SUPERBLOCK_DEF: SuperblockDef = SuperblockDef::new(146_538_381);

/// Every kind of checksummed block in era metadata, for naming a block found where another
/// kind was expected.
pub const BLOCK_KINDS: [BlockKind; 5] = BlockKind::with_generic(SUPERBLOCK);

/// Bytes per era-array value (one `le32` era per origin block, the era of the newest
/// digested writeset that marked it): readers walk it as an array of `u32`.
pub const ERA_VALUE_SIZE: u32 = <u32 as Unpack>::DISK_SIZE;

/// What block 0 holds while a build is under way: not a superblock (its checksum is wrong and
/// it is not all zeroes), so that an interrupted build leaves metadata that every reader
/// refuses, and that the kernel refuses to load instead of formatting it afresh.
pub const BUILD_IN_PROGRESS: &[u8] = b"era-log-tools: metadata being written; not usable\n";

/// dm-era metadata, as identification and the writers' refusals speak of it.
pub static FORMAT: Format = Format {
    name: "dm-era metadata",
    held: "dm-era metadata",
    held_unfinished: "dm-era metadata left unfinished by an interrupted era_restore",
    called: "dm-era metadata",
    reader: "era_dump",
    absent: "no dm-era metadata here",
    unfinished_advice: "an interrupted era_restore or era_repair left this device \
                        half-written: run it again",
    rewrites_unfinished: true,
    recognise,
};

/// The marker of our interrupted build in block 0, or the superblock's magic.
fn recognise(head: &[u8]) -> Option<State> {
    if head.starts_with(BUILD_IN_PROGRESS) {
        return Some(State::Unfinished);
    }
    let magic = head.get(MAGIC_OFFSET..MAGIC_OFFSET + 8).map(LE::read_u64);
    (magic == Some(SUPERBLOCK_MAGIC)).then_some(State::Intact)
}
