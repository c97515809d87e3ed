//! The era superblock: block 0, and the held metadata snapshot's copy of it.

use byteorder::{ByteOrder, LittleEndian as LE};

use super::writeset::WritesetDisk;
use super::ERA_VALUE_SIZE;
use crate::pdata::array::array_max_entries;
use crate::pdata::checksum;
use crate::pdata::error::Fault;
use crate::pdata::space_map::root::{SmRoot, SM_ROOT_SIZE};

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

const SM_ROOT_OFFSET: usize = 44;
/// Offset of `magic`, where every persistent-data superblock has its own.
pub const MAGIC_OFFSET: usize = 32;

/// `struct superblock_disk`, less its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Unused by the kernel (0); the peer's restore writes 1.
    pub flags: u32,
    /// Where the superblock says it lives: 0, or the snapshot's own block.
    pub blocknr: u64,
    /// Unused, zero.
    pub uuid: [u8; 16],
    /// [`SUPERBLOCK_MAGIC`].
    pub magic: u64,
    /// [`SUPERBLOCK_VERSION`].
    pub version: u32,
    /// The metadata space map (stale in a snapshot copy).
    pub sm_root: SmRoot,
    /// Origin block size in sectors.
    pub data_block_size: u32,
    /// Metadata block size in sectors, 8.
    pub metadata_block_size: u32,
    /// Origin blocks tracked: the era array's length.
    pub nr_blocks: u32,
    /// The current era.
    pub current_era: u32,
    /// The current era's writeset; root 0 means none (stale in a snapshot copy).
    pub current_writeset: WritesetDisk,
    /// Root of the writeset tree.
    pub writeset_tree_root: u64,
    /// Root of the era array.
    pub era_array_root: u64,
    /// Block of the held metadata snapshot, 0 for none.
    pub metadata_snap: u64,
}

impl Superblock {
    /// Decodes the fields, trusting nothing; see [`Superblock::parse`].
    pub fn unpack(b: &[u8]) -> Superblock {
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[16..32]);
        Superblock {
            flags: LE::read_u32(&b[4..]),
            blocknr: LE::read_u64(&b[8..]),
            uuid,
            magic: LE::read_u64(&b[MAGIC_OFFSET..]),
            version: LE::read_u32(&b[40..]),
            sm_root: SmRoot::unpack(&b[SM_ROOT_OFFSET..SM_ROOT_OFFSET + SM_ROOT_SIZE]),
            data_block_size: LE::read_u32(&b[172..]),
            metadata_block_size: LE::read_u32(&b[176..]),
            nr_blocks: LE::read_u32(&b[180..]),
            current_era: LE::read_u32(&b[184..]),
            current_writeset: WritesetDisk::unpack(&b[188..200]),
            writeset_tree_root: LE::read_u64(&b[200..]),
            era_array_root: LE::read_u64(&b[208..]),
            metadata_snap: LE::read_u64(&b[216..]),
        }
    }

    /// Encodes the fields into the first 224 bytes of `b` (the checksum is left to
    /// [`checksum::seal`]).
    pub fn pack(&self, b: &mut [u8]) {
        LE::write_u32(&mut b[4..], self.flags);
        LE::write_u64(&mut b[8..], self.blocknr);
        b[16..32].copy_from_slice(&self.uuid);
        LE::write_u64(&mut b[MAGIC_OFFSET..], self.magic);
        LE::write_u32(&mut b[40..], self.version);
        self.sm_root
            .pack(&mut b[SM_ROOT_OFFSET..SM_ROOT_OFFSET + SM_ROOT_SIZE]);
        LE::write_u32(&mut b[172..], self.data_block_size);
        LE::write_u32(&mut b[176..], self.metadata_block_size);
        LE::write_u32(&mut b[180..], self.nr_blocks);
        LE::write_u32(&mut b[184..], self.current_era);
        self.current_writeset.pack(&mut b[188..200]);
        LE::write_u64(&mut b[200..], self.writeset_tree_root);
        LE::write_u64(&mut b[208..], self.era_array_root);
        LE::write_u64(&mut b[216..], self.metadata_snap);
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
