//! dm-cache's on-disk format (the metadata of the device-mapper target `cache`): the
//! superblock, the values of the mapping array, and the one checksummed block kind of its
//! own. The dirty bitset of version 2 is a plain persistent-data bitset. The reader built on
//! them lives beside this module, in [`crate::cache`].

pub mod mapping;
pub mod superblock;

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::identify::{Format, State};
use crate::pdata::checksum::{BlockKind, SuperblockDef};
use superblock::{MAGIC_OFFSET, SUPERBLOCK_MAGIC};

/// The cache superblock (block 0, the only copy).
pub const SUPERBLOCK: BlockKind = BlockKind::superblock(&SUPERBLOCK_DEF);
static SUPERBLOCK_DEF: SuperblockDef = SuperblockDef::new(9_031_977);

/// Every kind of checksummed block in cache metadata, for naming a block found where
/// another kind was expected.
pub const BLOCK_KINDS: [BlockKind; 5] = BlockKind::with_generic(SUPERBLOCK);

/// dm-cache metadata, as identification and the writers' refusals speak of it. The suite
/// only reads it: none of its writers writes it, so no state of ours is unfinished.
pub static FORMAT: Format = Format {
    name: "dm-cache metadata",
    held: "dm-cache metadata",
    held_unfinished: "dm-cache metadata",
    called: "dm-cache metadata",
    reader: "cache_dump (thin-provisioning-tools)",
    absent: "no dm-cache metadata here",
    unfinished_advice: "this is dm-cache metadata",
    rewrites_unfinished: false,
    recognise,
};

/// The superblock's magic; the suite never leaves a marker of its own on cache metadata.
fn recognise(head: &[u8]) -> Option<State> {
    let magic = head.get(MAGIC_OFFSET..MAGIC_OFFSET + 8).map(LE::read_u64);
    (magic == Some(SUPERBLOCK_MAGIC)).then_some(State::Intact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identify::{identify, Content};

    #[test]
    fn the_octal_magic_is_recognised_and_the_decimal_one_is_not() {
        let mut head = vec![0u8; 8192];
        head[32..40].copy_from_slice(&[0x03, 0xC4, 0x18, 0, 0, 0, 0, 0]);
        assert_eq!(identify(&head), Content::Ours(&FORMAT, State::Intact));
        head[32..40].copy_from_slice(&6_142_003u64.to_le_bytes());
        assert_ne!(identify(&head), Content::Ours(&FORMAT, State::Intact));
    }

    #[test]
    fn writers_of_the_other_formats_refuse_it_and_name_it() {
        let cache = Content::Ours(&FORMAT, State::Intact);
        for other in [&crate::era::format::FORMAT, &crate::log::format::FORMAT] {
            assert!(!cache.replaceable_by(other));
            assert!(!cache.repairable_in_place_by(other));
            let advice = cache.advice(other).unwrap_or_default();
            assert!(
                advice.starts_with("this is dm-cache metadata, not "),
                "{advice}"
            );
        }
    }
}
