//! crc32c block checksums and the XOR constant of every checksummed structure.
//!
//! Every checksummed block stores at offset 0 the Castagnoli CRC of bytes 4..4096, taken
//! without the final inversion, XORed with a constant that differs per structure. The
//! distinct constants let a checker tell a damaged block from a block of another kind.

use std::fmt;

use super::error::Fault;
use super::io::BLOCK_SIZE;

/// Every kind of checksummed block in era metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// The era superblock (block 0, or the held metadata snapshot copy).
    EraSuperblock,
    /// A b-tree node, internal or leaf.
    BtreeNode,
    /// A block of values of a `dm-array`.
    ArrayBlock,
    /// The index block of the metadata space map.
    SmIndex,
    /// A bitmap block of a space map.
    SmBitmap,
}

impl BlockKind {
    /// Every kind, for identifying a block by its checksum.
    pub const ALL: [BlockKind; 5] = [
        BlockKind::EraSuperblock,
        BlockKind::BtreeNode,
        BlockKind::ArrayBlock,
        BlockKind::SmIndex,
        BlockKind::SmBitmap,
    ];

    /// The constant XORed into this kind's checksum.
    pub fn xor(self) -> u32 {
        match self {
            BlockKind::EraSuperblock => 146_538_381,
            BlockKind::BtreeNode => 121_107,
            BlockKind::ArrayBlock => 595_846_735,
            BlockKind::SmIndex => 160_478,
            BlockKind::SmBitmap => 240_779,
        }
    }

    /// Byte offset of the `u64` field in which a block of this kind records its own location.
    pub fn blocknr_offset(self) -> usize {
        match self {
            BlockKind::ArrayBlock => 16,
            _ => 8,
        }
    }
}

impl fmt::Display for BlockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlockKind::EraSuperblock => "superblock",
            BlockKind::BtreeNode => "node",
            BlockKind::ArrayBlock => "array block",
            BlockKind::SmIndex => "space-map index block",
            BlockKind::SmBitmap => "space-map bitmap block",
        })
    }
}

/// The raw CRC register over bytes 4.. of a block, before any structure's XOR.
fn raw_crc(block: &[u8]) -> u32 {
    crc32c::crc32c(&block[4..BLOCK_SIZE]) ^ 0xFFFF_FFFF
}

fn stored_csum(block: &[u8]) -> u32 {
    u32::from_le_bytes([block[0], block[1], block[2], block[3]])
}

fn stored_blocknr(block: &[u8], kind: BlockKind) -> u64 {
    let o = kind.blocknr_offset();
    let mut b = [0u8; 8];
    b.copy_from_slice(&block[o..o + 8]);
    u64::from_le_bytes(b)
}

/// The checksum a block of `kind` must carry.
pub fn checksum(block: &[u8], kind: BlockKind) -> u32 {
    raw_crc(block) ^ kind.xor()
}

/// Writes `loc` into the block's self-location field, then its checksum: what the kernel
/// does to every block just before writing it.
pub fn seal(block: &mut [u8], kind: BlockKind, loc: u64) {
    let o = kind.blocknr_offset();
    block[o..o + 8].copy_from_slice(&loc.to_le_bytes());
    reseal(block, kind);
}

/// Recomputes the checksum only, keeping the self-location field as it is.
pub fn reseal(block: &mut [u8], kind: BlockKind) {
    let c = checksum(block, kind);
    block[0..4].copy_from_slice(&c.to_le_bytes());
}

/// Checks that a block read from `loc` is an intact block of `kind` that knows it lives at
/// `loc`. The checksum is judged first, so that garbage reads as "bad checksum" rather than
/// as a misplaced block.
pub fn verify(block: &[u8], kind: BlockKind, loc: u64) -> Result<(), Fault> {
    let stored = stored_csum(block);
    let raw = raw_crc(block);
    if stored != raw ^ kind.xor() {
        return Err(BlockKind::ALL
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
        seal(&mut b, BlockKind::ArrayBlock, 77);
        assert_eq!(verify(&b, BlockKind::ArrayBlock, 77), Ok(()));
        assert_eq!(
            verify(&b, BlockKind::ArrayBlock, 78),
            Err(Fault::BlockNr { found: 77 })
        );
        assert_eq!(
            verify(&b, BlockKind::BtreeNode, 77),
            Err(Fault::WrongType {
                found: BlockKind::ArrayBlock
            })
        );
        b[4095] ^= 1;
        assert_eq!(
            verify(&b, BlockKind::ArrayBlock, 77),
            Err(Fault::BadChecksum)
        );
    }

    #[test]
    fn all_zero_block_is_not_valid_for_any_kind() {
        let b = vec![0u8; BLOCK_SIZE];
        for k in BlockKind::ALL {
            assert!(verify(&b, k, 0).is_err());
        }
    }
}
