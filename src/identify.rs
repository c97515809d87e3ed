//! What a device holds, told from the signatures at its start: our two formats, the
//! unfinished build our era writers leave behind, and the common things an admin may point
//! a tool at by mistake (filesystems, LVM, LUKS, swap, partition tables).
//!
//! Readers use it to say "this is an ext4 filesystem" instead of "bad checksum"; writers use
//! it to refuse a target that holds something else before they write anything.

use std::fmt;
use std::io;

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::era::build::BUILD_IN_PROGRESS;
use crate::era::superblock::SUPERBLOCK_MAGIC as ERA_MAGIC;
use crate::log::header::MAGIC as LOG_MAGIC;
use crate::pdata::io::{AlignedBuf, ByteIo};

/// Bytes read from the start of a device to identify it: up to and including the Btrfs
/// superblock at 64 KiB, in whole 4096-byte blocks.
pub const PROBE_BYTES: u64 = 17 * 4096;

/// `magic` of dm-thin pool metadata (the same superblock layout as dm-era's).
const THIN_MAGIC: u64 = 27_022_010;
/// `magic` of dm-cache metadata.
const CACHE_MAGIC: u64 = 6_142_003;
/// Offset of `magic` in every persistent-data superblock.
const PDATA_MAGIC_OFFSET: usize = 32;

/// What a device was found to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// Nothing but zeros in the bytes probed: a new device, or one that was wiped.
    Zeros,
    /// A dm-era superblock magic in block 0.
    EraMetadata,
    /// The marker our era writers put in block 0 while they write: an interrupted run.
    EraUnfinished,
    /// The magic of a dm-log disk log at offset 0.
    DirtyLog,
    /// dm-thin pool metadata.
    ThinMetadata,
    /// dm-cache metadata.
    CacheMetadata,
    /// A filesystem: its name ("ext4", "XFS", …).
    Filesystem(&'static str),
    /// An LVM2 physical volume label.
    LvmPhysicalVolume,
    /// A LUKS header.
    Luks,
    /// A swap area signature.
    Swap,
    /// A partition table: "GPT" or "MBR".
    PartitionTable(&'static str),
    /// No signature we know.
    Unknown,
}

impl Content {
    /// Whether a writer of `family` may write over this content without `--force`: its own
    /// format, zeros, an unfinished era build (for the era writers) and anything unknown
    /// (damage is what the writers repair).
    pub fn writable_by(&self, family: Family) -> bool {
        match self {
            Content::Zeros | Content::Unknown => true,
            Content::EraMetadata | Content::EraUnfinished => family == Family::Era,
            Content::DirtyLog => family == Family::Log,
            _ => false,
        }
    }

    /// What a reader of `family` should tell the user when this is not its format, or
    /// `None` when the content says nothing beyond the reader's own error (damage, or the
    /// reader's own format).
    pub fn advice(&self, family: Family) -> Option<String> {
        let what = match (self, family) {
            (Content::Unknown, _) | (Content::EraMetadata, Family::Era) => return None,
            (Content::DirtyLog, Family::Log) => return None,
            (Content::Zeros, Family::Era) => {
                "no dm-era metadata here (all zeros): a new device, or the wrong one?".to_string()
            }
            (Content::Zeros, Family::Log) => {
                "no disk log here (all zeros): a new device, or the wrong one?".to_string()
            }
            (Content::EraUnfinished, Family::Era) => {
                "an interrupted era_restore or era_repair left this device half-written: run it \
                 again"
                    .to_string()
            }
            (Content::DirtyLog, Family::Era) => {
                "this is a mirror's disk log, not dm-era metadata; use log_dump".to_string()
            }
            (Content::EraMetadata | Content::EraUnfinished, Family::Log) => {
                "this is dm-era metadata, not a disk log; use era_dump".to_string()
            }
            (other, _) => format!("the device holds {other}, not {}", family.format_name()),
        };
        Some(what)
    }
}

impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Zeros => f.write_str("nothing but zeros"),
            Content::EraMetadata => f.write_str("dm-era metadata"),
            Content::EraUnfinished => {
                f.write_str("dm-era metadata left unfinished by an interrupted era_restore")
            }
            Content::DirtyLog => f.write_str("a dm-log disk log (a mirror's region log)"),
            Content::ThinMetadata => f.write_str("dm-thin pool metadata"),
            Content::CacheMetadata => f.write_str("dm-cache metadata"),
            Content::Filesystem(name) => write!(f, "{} {name} filesystem", article(name)),
            Content::LvmPhysicalVolume => f.write_str("an LVM2 physical volume"),
            Content::Luks => f.write_str("a LUKS encrypted volume"),
            Content::Swap => f.write_str("a swap area"),
            Content::PartitionTable(kind) => write!(f, "{} partition table", article(kind)),
            Content::Unknown => f.write_str("no signature we know"),
        }
    }
}

fn article(word: &str) -> &'static str {
    match word.as_bytes().first() {
        Some(b'e' | b'E' | b'a' | b'A' | b'M' | b'N' | b'X') => "an",
        _ => "a",
    }
}

/// The two formats of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// dm-era metadata.
    Era,
    /// The dm-log disk dirty log.
    Log,
}

impl Family {
    fn format_name(self) -> &'static str {
        match self {
            Family::Era => "dm-era metadata",
            Family::Log => "a disk log",
        }
    }
}

/// Identifies what `head`, the first bytes of a device, holds. The more specific
/// signatures at offset 0 are tried first, because a format's own data (a log's bitmap, a
/// superblock's fields) may happen to contain another format's magic further in.
pub fn identify(head: &[u8]) -> Content {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    if head.starts_with(BUILD_IN_PROGRESS) {
        return Content::EraUnfinished;
    }
    if let Some(magic) = head
        .get(PDATA_MAGIC_OFFSET..PDATA_MAGIC_OFFSET + 8)
        .map(LE::read_u64)
    {
        match magic {
            ERA_MAGIC => return Content::EraMetadata,
            THIN_MAGIC => return Content::ThinMetadata,
            CACHE_MAGIC => return Content::CacheMetadata,
            _ => {}
        }
    }
    if head.get(..4).map(LE::read_u32) == Some(LOG_MAGIC) {
        return Content::DirtyLog;
    }
    if at(0, b"XFSB") {
        return Content::Filesystem("XFS");
    }
    if at(0, b"LUKS\xba\xbe") {
        return Content::Luks;
    }
    if (0..4).any(|s| at(s * 512, b"LABELONE") && at(s * 512 + 24, b"LVM2 001")) {
        return Content::LvmPhysicalVolume;
    }
    if let Some(name) = ext_filesystem(head) {
        return Content::Filesystem(name);
    }
    if at(65_536 + 64, b"_BHRfS_M") {
        return Content::Filesystem("Btrfs");
    }
    if at(4086, b"SWAPSPACE2") || at(4086, b"SWAP-SPACE") {
        return Content::Swap;
    }
    if at(512, b"EFI PART") || at(4096, b"EFI PART") {
        return Content::PartitionTable("GPT");
    }
    if let Some(c) = boot_sector(head) {
        return c;
    }
    if head.iter().all(|&b| b == 0) {
        return Content::Zeros;
    }
    Content::Unknown
}

/// ext2, ext3 or ext4, from the superblock at byte 1024: magic 0xEF53, then the feature
/// flags that set the three apart.
fn ext_filesystem(head: &[u8]) -> Option<&'static str> {
    let sb = head.get(1024..1024 + 104)?;
    if LE::read_u16(&sb[56..]) != 0xEF53 {
        return None;
    }
    let compat = LE::read_u32(&sb[92..]);
    let incompat = LE::read_u32(&sb[96..]);
    const HAS_JOURNAL: u32 = 0x4;
    const EXT4_ONLY: u32 = 0x40 | 0x80 | 0x200; // extents, 64bit, flex_bg
    Some(if incompat & EXT4_ONLY != 0 {
        "ext4"
    } else if compat & HAS_JOURNAL != 0 {
        "ext3"
    } else {
        "ext2"
    })
}

/// A sector 0 ending in 0x55AA: a FAT or NTFS boot sector, or an MBR partition table whose
/// four entries are well formed and not all empty.
fn boot_sector(head: &[u8]) -> Option<Content> {
    let s = head.get(..512)?;
    if s[510..512] != [0x55, 0xAA] {
        return None;
    }
    if &s[3..11] == b"NTFS    " {
        return Some(Content::Filesystem("NTFS"));
    }
    if &s[3..11] == b"EXFAT   " {
        return Some(Content::Filesystem("exFAT"));
    }
    if s[54..59] == *b"FAT12" || s[54..59] == *b"FAT16" || s[82..87] == *b"FAT32" {
        return Some(Content::Filesystem("FAT"));
    }
    let entries = s[446..510].chunks_exact(16);
    let well_formed = entries.clone().all(|e| e[0] == 0 || e[0] == 0x80);
    let used = entries.filter(|e| e[4] != 0).count();
    (well_formed && used > 0).then_some(Content::PartitionTable("MBR"))
}

/// Reads the first [`PROBE_BYTES`] of `io` (fewer on a smaller device, in whole 512-byte
/// sectors so that `O_DIRECT` accepts the read) and identifies them.
pub fn probe(io: &dyn ByteIo) -> io::Result<Content> {
    let len = io.size_bytes().min(PROBE_BYTES) / 512 * 512;
    let mut buf = AlignedBuf::zeroed(len as usize);
    io.read_at(buf.as_mut_slice(), 0)?;
    Ok(identify(buf.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(offset: usize, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; PROBE_BYTES as usize];
        v[offset..offset + bytes.len()].copy_from_slice(bytes);
        v
    }

    #[test]
    fn each_signature_is_recognised_at_its_offset() {
        let cases: Vec<(Vec<u8>, Content)> = vec![
            (vec![0; 8192], Content::Zeros),
            (with(0, BUILD_IN_PROGRESS), Content::EraUnfinished),
            (with(32, &ERA_MAGIC.to_le_bytes()), Content::EraMetadata),
            (with(32, &THIN_MAGIC.to_le_bytes()), Content::ThinMetadata),
            (with(32, &CACHE_MAGIC.to_le_bytes()), Content::CacheMetadata),
            (with(0, &[0x72, 0x52, 0x69, 0x4D]), Content::DirtyLog),
            (with(0, b"XFSB"), Content::Filesystem("XFS")),
            (with(0, b"LUKS\xba\xbe\x00\x02"), Content::Luks),
            (with(65_600, b"_BHRfS_M"), Content::Filesystem("Btrfs")),
            (with(4086, b"SWAPSPACE2"), Content::Swap),
            (with(512, b"EFI PART"), Content::PartitionTable("GPT")),
            (with(1080, &[0x53, 0xEF]), Content::Filesystem("ext2")),
            (with(7, &[1]), Content::Unknown),
        ];
        for (head, want) in cases {
            assert_eq!(identify(&head), want);
        }
        let mut pv = with(512, b"LABELONE");
        pv[512 + 24..512 + 32].copy_from_slice(b"LVM2 001");
        assert_eq!(identify(&pv), Content::LvmPhysicalVolume);
    }

    #[test]
    fn ext_versions_are_told_apart_by_their_features() {
        let mut h = with(1080, &[0x53, 0xEF]);
        h[1024 + 92] = 0x4;
        assert_eq!(identify(&h), Content::Filesystem("ext3"));
        h[1024 + 96] = 0x40;
        assert_eq!(identify(&h), Content::Filesystem("ext4"));
    }

    #[test]
    fn a_boot_sector_is_a_partition_table_only_when_its_entries_are() {
        let mut mbr = with(510, &[0x55, 0xAA]);
        assert_eq!(identify(&mbr), Content::Unknown, "no partition in use");
        mbr[446] = 0x80;
        mbr[446 + 4] = 0x83;
        assert_eq!(identify(&mbr), Content::PartitionTable("MBR"));
        mbr[446 + 16] = 0x33;
        assert_eq!(identify(&mbr), Content::Unknown, "a bad status byte");
        let mut fat = with(510, &[0x55, 0xAA]);
        fat[82..87].copy_from_slice(b"FAT32");
        assert_eq!(identify(&fat), Content::Filesystem("FAT"));
    }

    #[test]
    fn a_short_device_is_probed_as_far_as_it_goes() {
        assert_eq!(identify(&[]), Content::Zeros);
        assert_eq!(identify(&[0x72, 0x52, 0x69, 0x4D]), Content::DirtyLog);
        assert_eq!(identify(b"XFSB"), Content::Filesystem("XFS"));
    }

    #[test]
    fn writers_accept_their_own_format_zeros_and_damage_only() {
        use Family::*;
        assert!(Content::EraMetadata.writable_by(Era));
        assert!(Content::EraUnfinished.writable_by(Era));
        assert!(!Content::EraMetadata.writable_by(Log));
        assert!(Content::DirtyLog.writable_by(Log));
        assert!(!Content::DirtyLog.writable_by(Era));
        assert!(Content::Zeros.writable_by(Log) && Content::Unknown.writable_by(Era));
        assert!(!Content::Filesystem("ext4").writable_by(Era));
        assert!(!Content::ThinMetadata.writable_by(Era));
    }

    #[test]
    fn readers_are_told_what_they_were_given() {
        let advice = |c: Content, f| c.advice(f).unwrap_or_default();
        assert!(advice(Content::DirtyLog, Family::Era).contains("use log_dump"));
        assert!(advice(Content::EraMetadata, Family::Log).contains("use era_dump"));
        assert!(advice(Content::EraUnfinished, Family::Era).contains("run it again"));
        assert!(advice(Content::Zeros, Family::Era).contains("all zeros"));
        assert_eq!(
            advice(Content::Filesystem("ext4"), Family::Era),
            "the device holds an ext4 filesystem, not dm-era metadata"
        );
        assert_eq!(Content::Unknown.advice(Family::Era), None);
    }
}
