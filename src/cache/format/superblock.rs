//! The cache superblock: block 0, the only copy (the kernel's `struct
//! cache_disk_superblock`, dm-cache-metadata.c).

use crate::pdata::checksum;
use crate::pdata::error::Fault;
use crate::pdata::layout::superblock_layout;
use crate::pdata::space_map::root::SmRoot;

/// Where the superblock lives.
pub const SUPERBLOCK_LOCATION: u64 = 0;
/// `magic` of every cache superblock: 06142003 in octal.
pub const SUPERBLOCK_MAGIC: u64 = 0o6_142_003;
pub use crate::pdata::layout::MAGIC_OFFSET;
/// The first format: the dirty flag of each cache block in its mapping.
pub const VERSION_1: u32 = 1;
/// The format of tables with `metadata2`: dirty flags in a bitset of their own.
pub const VERSION_2: u32 = 2;
/// `metadata_block_size` in sectors: metadata blocks are always 4096 bytes.
pub const METADATA_BLOCK_SIZE_SECTORS: u32 = 8;

/// `flags` bit: the last suspend wrote the dirty state, hints and discards, and nothing
/// was committed since; when clear, the kernel takes every mapped block as dirty.
pub const CLEAN_SHUTDOWN: u32 = 1;
/// `flags` bit: a metadata operation failed in the kernel; it will not load the metadata
/// for writing until a checker clears the flag.
pub const NEEDS_CHECK: u32 = 2;

/// Smallest cache block, in sectors (32 KiB).
pub const MIN_DATA_BLOCK_SIZE: u32 = 64;
/// Largest cache block, in sectors (1 GiB).
pub const MAX_DATA_BLOCK_SIZE: u32 = 2_097_152;

superblock_layout! {
    /// `struct cache_disk_superblock`, less its checksum: `flags` [`CLEAN_SHUTDOWN`] and
    /// [`NEEDS_CHECK`] (other bits are kept but mean nothing), `blocknr` 0,
    /// [`SUPERBLOCK_MAGIC`], [`VERSION_1`] or [`VERSION_2`].
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Superblock {
        /// The policy's name, NUL-padded; empty until the first suspend.
        pub policy_name: [u8; 16] @ 44,
        /// Bytes per hint: 0 or 4.
        pub policy_hint_size: u32 @ 60,
        /// The metadata space map.
        pub sm_root: SmRoot @ 64,
        /// Root of the mapping array.
        pub mapping_root: u64 @ 192,
        /// Root of the hint array; 0 for none.
        pub hint_root: u64 @ 200,
        /// Root of the discard bitset.
        pub discard_root: u64 @ 208,
        /// Sectors per discard block; 0 until the first suspend.
        pub discard_block_size: u64 @ 216,
        /// Bits of the discard bitset; 0 until the first suspend.
        pub discard_nr_blocks: u64 @ 224,
        /// Cache block size in sectors.
        pub data_block_size: u32 @ 232,
        /// Metadata block size in sectors, 8.
        pub metadata_block_size: u32 @ 236,
        /// Cache blocks: the length of the mapping array and of the dirty bitset.
        pub cache_blocks: u32 @ 240,
        /// Features a reader may ignore (none is defined).
        pub compat_flags: u32 @ 244,
        /// Features a read-only reader may ignore (none is defined).
        pub compat_ro_flags: u32 @ 248,
        /// Features a reader must know (none is defined): the kernel refuses any.
        pub incompat_flags: u32 @ 252,
        /// Counter saved at suspend.
        pub read_hits: u32 @ 256,
        /// Counter saved at suspend.
        pub read_misses: u32 @ 260,
        /// Counter saved at suspend.
        pub write_hits: u32 @ 264,
        /// Counter saved at suspend.
        pub write_misses: u32 @ 268,
        /// The policy's major version.
        pub policy_version_major: u32 @ 272,
        /// The policy's minor version.
        pub policy_version_minor: u32 @ 276,
        /// The policy's patch level.
        pub policy_version_patch: u32 @ 280,
        /// Version 2 only: root of the dirty bitset (zero bytes in version 1).
        pub dirty_root: u64 @ 284,
    }
}

impl Superblock {
    /// Decodes the fields, trusting nothing; see [`Superblock::parse`].
    pub fn unpack(b: &[u8]) -> Superblock {
        Superblock::unpack_fields(b)
    }

    /// Encodes the fields into the first 292 bytes of `b` (the checksum is left to
    /// [`checksum::seal`]).
    pub fn pack(&self, b: &mut [u8]) {
        self.pack_fields(b);
    }

    /// Decodes block 0 after checking what the kernel checks before it loads the metadata:
    /// the checksum, that it knows it is block 0, the magic, the version, the cache block
    /// size and that no incompatible feature is set; and that a version-2 superblock has
    /// a dirty bitset. `needs_check` is the reader's to judge.
    pub fn parse(b: &[u8]) -> Result<Superblock, Fault> {
        checksum::verify_among(
            b,
            super::SUPERBLOCK,
            SUPERBLOCK_LOCATION,
            &super::BLOCK_KINDS,
        )?;
        let sb = Superblock::unpack(b);
        if sb.magic != SUPERBLOCK_MAGIC {
            return Err(Fault::Invalid(format!("bad magic {:#x}", sb.magic)));
        }
        if !(VERSION_1..=VERSION_2).contains(&sb.version) {
            return Err(Fault::Invalid(format!(
                "unsupported version {} (dm-cache metadata is version 1 or 2)",
                sb.version
            )));
        }
        check_data_block_size(sb.data_block_size)?;
        if sb.incompat_flags != 0 {
            return Err(Fault::Invalid(format!(
                "incompatible feature flags {:#x} set, which no kernel defines",
                sb.incompat_flags
            )));
        }
        if sb.version == VERSION_2 && sb.dirty_root == 0 {
            return Err(Fault::Invalid("version 2 without a dirty bitset".into()));
        }
        Ok(sb)
    }

    /// Whether the kernel flagged the metadata as needing a check.
    pub fn needs_check(&self) -> bool {
        self.flags & NEEDS_CHECK != 0
    }

    /// Whether the dirty flags are those of the last suspend, written by a clean shutdown.
    /// When not, the kernel treats every mapped block as dirty.
    pub fn clean_shutdown(&self) -> bool {
        self.flags & CLEAN_SHUTDOWN != 0
    }

    /// The policy's name, up to its first NUL.
    pub fn policy_name(&self) -> String {
        let end = self.policy_name.iter().position(|&c| c == 0);
        String::from_utf8_lossy(&self.policy_name[..end.unwrap_or(16)]).into_owned()
    }
}

/// Checks a cache block size in sectors as the kernel does: a multiple of 64 sectors
/// (32 KiB), at most 1 GiB.
pub fn check_data_block_size(sectors: u32) -> Result<(), Fault> {
    let in_range = (MIN_DATA_BLOCK_SIZE..=MAX_DATA_BLOCK_SIZE).contains(&sectors);
    if !in_range || sectors % MIN_DATA_BLOCK_SIZE != 0 {
        return Err(Fault::Invalid(format!(
            "data block size {sectors} is not a multiple of 64 sectors between 64 and 2097152"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::checksum::seal;

    fn example() -> Superblock {
        Superblock {
            flags: CLEAN_SHUTDOWN,
            blocknr: 0,
            uuid: [0x55; 16],
            magic: SUPERBLOCK_MAGIC,
            version: VERSION_2,
            policy_name: *b"smq\0\0\0\0\0\0\0\0\0\0\0\0\0",
            policy_hint_size: 4,
            sm_root: SmRoot {
                nr_blocks: 0x0A0B,
                nr_allocated: 7,
                bitmap_root: 2,
                ref_count_root: 3,
            },
            mapping_root: 0x11,
            hint_root: 0x12,
            discard_root: 0x13,
            discard_block_size: 0x0102_0304_0506_0708,
            discard_nr_blocks: 0x15,
            data_block_size: 128,
            metadata_block_size: METADATA_BLOCK_SIZE_SECTORS,
            cache_blocks: 0x0001_0203,
            compat_flags: 0,
            compat_ro_flags: 0,
            incompat_flags: 0,
            read_hits: 0x21,
            read_misses: 0x22,
            write_hits: 0x23,
            write_misses: 0x24,
            policy_version_major: 2,
            policy_version_minor: 0,
            policy_version_patch: 1,
            dirty_root: 0x0807_0605_0403_0201,
        }
    }

    #[test]
    fn pack_writes_the_fields_at_the_kernels_offsets() {
        let sb = example();
        let mut b = vec![0xEEu8; 4096];
        sb.pack(&mut b);
        // The head every persistent-data superblock shares is pdata::layout's test; here,
        // the format's magic and version in it.
        // 06142003 octal = 1623043 = 0x18C403
        assert_eq!(b[32..44], [0x03, 0xC4, 0x18, 0, 0, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&b[44..48], b"smq\0");
        assert_eq!(b[60..68], [4, 0, 0, 0, 0x0B, 0x0A, 0, 0]);
        assert_eq!(b[96..192], [0; 96], "the space-map root's unused tail");
        assert_eq!(b[192..200], [0x11, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(b[216..224], [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(b[232..244], [128, 0, 0, 0, 8, 0, 0, 0, 3, 2, 1, 0]);
        assert_eq!(b[256..260], [0x21, 0, 0, 0]);
        assert_eq!(b[272..284], [2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(b[284..292], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(b[292..].iter().all(|&x| x == 0xEE), "past the fields");
        assert_eq!(Superblock::unpack(&b), sb);
        assert_eq!(sb.policy_name(), "smq");
    }

    fn sealed(sb: &Superblock) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        sb.pack(&mut b);
        seal(&mut b, super::super::SUPERBLOCK, 0);
        b
    }

    #[test]
    fn parse_checks_what_the_kernel_checks() {
        assert_eq!(Superblock::parse(&sealed(&example())), Ok(example()));
        let invalid = |f: fn(&mut Superblock), want: &str| {
            let mut sb = example();
            f(&mut sb);
            match Superblock::parse(&sealed(&sb)) {
                Err(Fault::Invalid(what)) => assert!(what.contains(want), "{what}"),
                other => panic!("{want}: {other:?}"),
            }
        };
        invalid(|sb| sb.magic = 6_142_003, "bad magic 0x5db833");
        invalid(|sb| sb.version = 3, "unsupported version 3");
        invalid(|sb| sb.version = 0, "unsupported version 0");
        invalid(|sb| sb.data_block_size = 96, "data block size 96");
        invalid(|sb| sb.data_block_size = 0, "data block size 0");
        invalid(
            |sb| sb.data_block_size = 4_194_304,
            "data block size 4194304",
        );
        invalid(|sb| sb.incompat_flags = 4, "incompatible feature flags 0x4");
        invalid(|sb| sb.dirty_root = 0, "without a dirty bitset");
        let mut v1 = example();
        (v1.version, v1.dirty_root) = (VERSION_1, 0);
        assert!(
            Superblock::parse(&sealed(&v1)).is_ok(),
            "v1 has no dirty root"
        );
        let mut torn = sealed(&example());
        torn[4000] ^= 1;
        assert_eq!(Superblock::parse(&torn), Err(Fault::BadChecksum));
        let mut elsewhere = example();
        elsewhere.blocknr = 5;
        let mut b = vec![0u8; 4096];
        elsewhere.pack(&mut b);
        crate::pdata::checksum::reseal(&mut b, super::super::SUPERBLOCK);
        assert_eq!(Superblock::parse(&b), Err(Fault::BlockNr { found: 5 }));
    }

    #[test]
    fn flags_say_needs_check_and_clean_shutdown() {
        let mut sb = example();
        assert!(sb.clean_shutdown() && !sb.needs_check());
        sb.flags = NEEDS_CHECK | 4;
        assert!(!sb.clean_shutdown() && sb.needs_check());
    }
}
