//! The era superblock: block 0, and the held metadata snapshot's copy of it.

use super::writeset::WritesetDisk;
use super::ERA_VALUE_SIZE;
use crate::pdata::array::array_max_entries;
use crate::pdata::checksum;
use crate::pdata::error::Fault;
use crate::pdata::layout::superblock_layout;
use crate::pdata::space_map::root::SmRoot;

/// Where the live superblock lives.
pub const SUPERBLOCK_LOCATION: u64 = 0;
/// `magic` of every era superblock.
pub const SUPERBLOCK_MAGIC: u64 = 2_126_579_579;
/// The only version the kernel writes and accepts.
pub const SUPERBLOCK_VERSION: u32 = 1;
/// `metadata_block_size` in sectors: metadata blocks are always 4096 bytes.
pub const METADATA_BLOCK_SIZE_SECTORS: u32 = 8;
/// The kernel refuses origins of this many blocks or more.
pub const MAX_NR_BLOCKS: u64 = 1 << 31;

pub use crate::pdata::layout::MAGIC_OFFSET;

superblock_layout! {
    /// `struct superblock_disk`, less its checksum: `flags` unused by the kernel (0; the
    /// peer's restore writes 1), `blocknr` 0 or the snapshot's own block,
    /// [`SUPERBLOCK_MAGIC`], [`SUPERBLOCK_VERSION`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Superblock {
        /// The metadata space map (stale in a snapshot copy).
        pub sm_root: SmRoot @ 44,
        /// Origin block size in sectors.
        pub data_block_size: u32 @ 172,
        /// Metadata block size in sectors, 8.
        pub metadata_block_size: u32 @ 176,
        /// Origin blocks tracked: the era array's length.
        pub nr_blocks: u32 @ 180,
        /// The current era.
        pub current_era: u32 @ 184,
        /// The current era's writeset; root 0 means none (stale in a snapshot copy).
        pub current_writeset: WritesetDisk @ 188,
        /// Root of the writeset tree.
        pub writeset_tree_root: u64 @ 200,
        /// Root of the era array.
        pub era_array_root: u64 @ 208,
        /// Block of the held metadata snapshot, 0 for none.
        pub metadata_snap: u64 @ 216,
    }
}

impl Superblock {
    /// Decodes the fields, trusting nothing; see [`Superblock::parse`].
    pub fn unpack(b: &[u8]) -> Superblock {
        Superblock::unpack_fields(b)
    }

    /// Encodes the fields into the first 224 bytes of `b` (the checksum is left to
    /// [`checksum::seal`]).
    pub fn pack(&self, b: &mut [u8]) {
        self.pack_fields(b);
    }

    /// Decodes a superblock read from `loc` after checking what the kernel checks: the
    /// checksum, that it knows it lives at `loc`, the magic and the version.
    pub fn parse(b: &[u8], loc: u64) -> Result<Superblock, Fault> {
        checksum::verify_among(b, super::SUPERBLOCK, loc, &super::BLOCK_KINDS)?;
        let sb = Superblock::unpack(b);
        if sb.magic != SUPERBLOCK_MAGIC {
            return Err(Fault::Invalid(format!("bad magic {:#x}", sb.magic)));
        }
        if sb.version != SUPERBLOCK_VERSION {
            return Err(Fault::Invalid(format!(
                "unknown superblock version {}",
                sb.version
            )));
        }
        Ok(sb)
    }
}

/// Checks an origin block size in sectors as the kernel does: positive and a multiple of 8
/// (4 KiB).
pub fn check_data_block_size(sectors: u32) -> Result<(), Fault> {
    if sectors == 0 || sectors % 8 != 0 {
        return Err(Fault::Invalid(format!(
            "data block size {sectors} is not a positive multiple of 8 sectors"
        )));
    }
    Ok(())
}

/// Checks that `nr_blocks` is one the kernel accepts and that an era array of that length
/// fits in a metadata device of `metadata_blocks` blocks. Readers allocate per origin block,
/// so this bounds their memory by the device they read rather than by a field.
pub fn check_nr_blocks(sb: &Superblock, metadata_blocks: u64) -> Result<(), Fault> {
    let nr_blocks = sb.nr_blocks as u64;
    if nr_blocks >= MAX_NR_BLOCKS {
        return Err(Fault::Invalid(format!(
            "nr_blocks {nr_blocks} is 2^31 or more"
        )));
    }
    let room = metadata_blocks.saturating_mul(array_max_entries(ERA_VALUE_SIZE) as u64);
    if nr_blocks > room {
        return Err(Fault::Invalid(format!(
            "nr_blocks {nr_blocks} needs a larger era array than {metadata_blocks} metadata blocks can hold"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_writes_the_fields_of_the_first_224_bytes_only() {
        let sb = Superblock {
            flags: 1,
            blocknr: 0x0102,
            uuid: [0x55; 16],
            magic: SUPERBLOCK_MAGIC,
            version: SUPERBLOCK_VERSION,
            sm_root: SmRoot {
                nr_blocks: 0x0A0B,
                nr_allocated: 7,
                bitmap_root: 2,
                ref_count_root: 3,
            },
            data_block_size: 0x80,
            metadata_block_size: METADATA_BLOCK_SIZE_SECTORS,
            nr_blocks: 0x0001_0000,
            current_era: 5,
            current_writeset: WritesetDisk {
                nr_bits: 0x0001_0000,
                root: 0x99,
            },
            writeset_tree_root: 4,
            era_array_root: 6,
            metadata_snap: 0x0807_0605_0403_0201,
        };
        let mut b = vec![0xEEu8; 4096];
        sb.pack(&mut b);
        // The head every persistent-data superblock shares is pdata::layout's test; here,
        // the format's magic and version in it.
        // 2126579579 = 0x7EC1_077B
        assert_eq!(b[32..44], [0x7B, 0x07, 0xC1, 0x7E, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(b[44..48], [0x0B, 0x0A, 0, 0]);
        assert_eq!(b[76..172], [0; 96], "the space-map root's unused tail");
        assert_eq!(b[172..176], [0x80, 0, 0, 0]);
        assert_eq!(b[180..184], [0, 0, 1, 0]);
        assert_eq!(b[188..200], [0, 0, 1, 0, 0x99, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(b[216..224], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(b[224..].iter().all(|&x| x == 0xEE), "past the fields");
        assert_eq!(Superblock::unpack(&b), sb);
    }
}
