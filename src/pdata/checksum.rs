//! crc32c block checksums and the XOR constant of every checksummed structure.
//!
//! Every checksummed block stores at offset 0 the Castagnoli CRC of bytes 4..4096, taken
//! without the final inversion, XORed with a constant that differs per structure. The
//! distinct constants let a checker tell a damaged block from a block of another kind.

use std::fmt;

use byteorder::{ByteOrder, LittleEndian as LE};

use super::error::Fault;
use super::io::BLOCK_SIZE;

/// A kind of checksummed block: its name in messages, the constant XORed into its checksum,
/// and where it records its own location. The kinds of the persistent-data structures are
/// here; a format declares its own (its superblock) with [`BlockKind::superblock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockKind(&'static Def);

/// What a [`BlockKind`] is, behind one pointer: errors carry a kind, and stay small.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Def {
    name: &'static str,
    xor: u32,
    blocknr_offset: usize,
}

impl Def {
    const fn new(name: &'static str, xor: u32, blocknr_offset: usize) -> Def {
        Def {
            name,
            xor,
            blocknr_offset,
        }
    }
}

impl BlockKind {
    /// A b-tree node, internal or leaf.
    pub const BTREE_NODE: BlockKind = BlockKind(&Def::new("node", 121_107, 8));
    /// A block of values of a `dm-array`.
    pub const ARRAY_BLOCK: BlockKind = BlockKind(&Def::new("array block", 595_846_735, 16));
    /// The index block of the metadata space map.
    pub const SM_INDEX: BlockKind = BlockKind(&Def::new("space-map index block", 160_478, 8));
    /// A bitmap block of a space map.
    pub const SM_BITMAP: BlockKind = BlockKind(&Def::new("space-map bitmap block", 240_779, 8));

    /// The kinds every format built on persistent-data shares.
    pub const GENERIC: [BlockKind; 4] = [
        BlockKind::BTREE_NODE,
        BlockKind::ARRAY_BLOCK,
        BlockKind::SM_INDEX,
        BlockKind::SM_BITMAP,
    ];

    /// Every kind of checksummed block of a format whose superblock is `superblock`: it and
    /// the [`GENERIC`](BlockKind::GENERIC) ones, for naming a block found where another kind
    /// was expected.
    pub const fn with_generic(superblock: BlockKind) -> [BlockKind; 5] {
        let [a, b, c, d] = BlockKind::GENERIC;
        [superblock, a, b, c, d]
    }

    /// A format's superblock, as `def` (a `static` of the format's) defines it.
    pub const fn superblock(def: &'static SuperblockDef) -> BlockKind {
        BlockKind(&def.0)
    }

    /// Whether this is a format's superblock.
    pub fn is_superblock(self) -> bool {
        self.0.name == SUPERBLOCK
    }

    /// The constant XORed into this kind's checksum.
    pub fn xor(self) -> u32 {
        self.0.xor
    }

    /// Byte offset of the `u64` field in which a block of this kind records its own location.
    pub fn blocknr_offset(self) -> usize {
        self.0.blocknr_offset
    }
}

/// A format's superblock kind (every persistent-data superblock records its location at
/// byte 8, like a node), made in a `static` of the format's:
/// `static SB: SuperblockDef = SuperblockDef::new(XOR);`, then
/// `BlockKind::superblock(&SB)`.
#[derive(Debug)]
pub struct SuperblockDef(Def);

impl SuperblockDef {
    /// The superblock whose checksum carries `xor`.
    pub const fn new(xor: u32) -> SuperblockDef {
        SuperblockDef(Def::new(SUPERBLOCK, xor, 8))
    }
}

/// What messages call every format's superblock.
const SUPERBLOCK: &str = "superblock";

impl fmt::Display for BlockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

/// The raw CRC register over bytes 4.. of a block, before any structure's XOR.
fn raw_crc(block: &[u8]) -> u32 {
    crc32c::crc32c(&block[4..BLOCK_SIZE]) ^ 0xFFFF_FFFF
}

fn stored_csum(block: &[u8]) -> u32 {
    LE::read_u32(&block[0..4])
}

fn stored_blocknr(block: &[u8], kind: BlockKind) -> u64 {
    let o = kind.blocknr_offset();
    LE::read_u64(&block[o..o + 8])
}

/// The checksum a block of `kind` must carry.
pub fn checksum(block: &[u8], kind: BlockKind) -> u32 {
    raw_crc(block) ^ kind.xor()
}

/// Writes `loc` into the block's self-location field, then its checksum: what the kernel
/// does to every block just before writing it.
pub fn seal(block: &mut [u8], kind: BlockKind, loc: u64) {
    let o = kind.blocknr_offset();
    LE::write_u64(&mut block[o..o + 8], loc);
    reseal(block, kind);
}

/// Recomputes the checksum only, keeping the self-location field as it is.
pub fn reseal(block: &mut [u8], kind: BlockKind) {
    let c = checksum(block, kind);
    LE::write_u32(&mut block[0..4], c);
}

/// Checks that a block read from `loc` is an intact block of `kind` that knows it lives at
/// `loc`. The checksum is judged first, so that garbage reads as "bad checksum" rather than
/// as a misplaced block; a block of one of the generic kinds is named.
pub fn verify(block: &[u8], kind: BlockKind, loc: u64) -> Result<(), Fault> {
    verify_among(block, kind, loc, &BlockKind::GENERIC)
}

/// [`verify`], naming a block of any of `known` (a format's kinds) found instead of `kind`.
pub fn verify_among(
    block: &[u8],
    kind: BlockKind,
    loc: u64,
    known: &[BlockKind],
) -> Result<(), Fault> {
    let stored = stored_csum(block);
    let raw = raw_crc(block);
    if stored != raw ^ kind.xor() {
        return Err(known
            .iter()
            .find(|k| stored == raw ^ k.xor())
            .map_or(Fault::BadChecksum, |&found| Fault::WrongType { found }));
    }
    let found = stored_blocknr(block, kind);
    if found != loc {
        return Err(Fault::BlockNr { found });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_crc32c_test_vector() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn seal_then_verify_and_detect_damage() {
        let mut b = vec![0u8; BLOCK_SIZE];
        b[100] = 42;
        seal(&mut b, BlockKind::ARRAY_BLOCK, 77);
        assert_eq!(verify(&b, BlockKind::ARRAY_BLOCK, 77), Ok(()));
        assert_eq!(
            verify(&b, BlockKind::ARRAY_BLOCK, 78),
            Err(Fault::BlockNr { found: 77 })
        );
        assert_eq!(
            verify(&b, BlockKind::BTREE_NODE, 77),
            Err(Fault::WrongType {
                found: BlockKind::ARRAY_BLOCK
            })
        );
        b[4095] ^= 1;
        assert_eq!(
            verify(&b, BlockKind::ARRAY_BLOCK, 77),
            Err(Fault::BadChecksum)
        );
    }

    #[test]
    fn all_zero_block_is_not_valid_for_any_kind() {
        let b = vec![0u8; BLOCK_SIZE];
        for k in BlockKind::GENERIC {
            assert!(verify(&b, k, 0).is_err());
        }
    }
}
