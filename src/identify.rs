//! What a device holds, told from the signatures at its start: our two formats, the
//! unfinished build our era writers leave behind, and the common things an admin may point
//! a tool at by mistake (filesystems, LVM, LUKS, swap, partition tables).
//!
//! Readers use it to say "this is an ext4 filesystem" instead of "bad checksum"; writers use
//! it to refuse a target that holds something else before they write anything (see
//! docs/identification.md for which writer writes over what).

use std::fmt;
use std::io;

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::pdata::io::{AlignedBuf, ByteIo};
use crate::pdata::layout::MAGIC_OFFSET;

/// Bytes read from the start of a device to identify it: up to and including the Btrfs
/// superblock at 64 KiB, in whole 4096-byte blocks.
pub const PROBE_BYTES: u64 = 17 * 4096;

/// `magic` of dm-thin pool metadata (the same superblock layout as dm-era's).
const THIN_MAGIC: u64 = 27_022_010;

/// One of the suite's formats, as identification and the writers' refusals speak of it.
/// Each format module declares one; [`crate::FORMATS`] lists them.
#[derive(Debug)]
pub struct Format {
    /// What its writers write and its readers want: "dm-era metadata", "a disk log".
    pub name: &'static str,
    /// What a device holding it is said to hold.
    pub held: &'static str,
    /// What a device that one of our writers left half-written is said to hold.
    pub held_unfinished: &'static str,
    /// How a reader of another format is told what it was given ("this is …, not …").
    pub called: &'static str,
    /// The tool that reads it, for a reader of another format.
    pub reader: &'static str,
    /// What its readers are told of a device of zeros ("no … here").
    pub absent: &'static str,
    /// What its readers are told of a device its writer left half-written.
    pub unfinished_advice: &'static str,
    /// Whether its writers write over what one of their interrupted runs left (a run that
    /// writes everything anew), or leave that to the repair that finishes it.
    pub rewrites_unfinished: bool,
    /// Recognises the format in the first bytes of a device.
    pub recognise: fn(&[u8]) -> Option<State>,
}

impl PartialEq for Format {
    fn eq(&self, other: &Format) -> bool {
        self.name == other.name
    }
}

impl Eq for Format {}

/// The state one of our formats was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Its own signature: the format as the kernel or a finished run of ours left it.
    Intact,
    /// The marker one of our writers puts on a device while it writes: an interrupted run.
    Unfinished,
}

/// What a device was found to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// Nothing but zeros in the bytes probed: a new device, or one that was wiped.
    Zeros,
    /// One of the suite's formats.
    Ours(&'static Format, State),
    /// dm-thin pool metadata.
    ThinMetadata,
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
    /// Whether a writer that replaces a device's content with `format` (era_restore,
    /// era_repair, log_restore) may write over this content without `--force`: zeros, its
    /// own format, and the marker of its own interrupted run where its writers start
    /// anew. Data we cannot name is not theirs to overwrite; whether the geometry of
    /// their own format matches is for the writer to check.
    pub fn replaceable_by(&self, format: &Format) -> bool {
        match self {
            Content::Zeros => true,
            Content::Ours(f, State::Intact) => *f == format,
            Content::Ours(f, State::Unfinished) => *f == format && format.rewrites_unfinished,
            _ => false,
        }
    }

    /// Whether a repairer that rewrites `format` in place (log_repair) may work on this
    /// content without `--force`: zeros, its own format in any state, and unrecognised
    /// bytes too, because a damaged header is what it repairs (it has its own refusal of
    /// a device without its magic).
    pub fn repairable_in_place_by(&self, format: &Format) -> bool {
        match self {
            Content::Zeros | Content::Unknown => true,
            Content::Ours(f, _) => *f == format,
            _ => false,
        }
    }

    /// What a reader of `format` should tell the user when this is not its format, or
    /// `None` when the content says nothing beyond the reader's own error (damage, or the
    /// reader's own format).
    pub fn advice(&self, format: &Format) -> Option<String> {
        let what = match self {
            Content::Unknown => return None,
            Content::Ours(f, State::Intact) if *f == format => return None,
            Content::Ours(f, State::Unfinished) if *f == format => {
                format.unfinished_advice.to_string()
            }
            Content::Zeros => {
                format!(
                    "{} (all zeros): a new device, or the wrong one?",
                    format.absent
                )
            }
            Content::Ours(other, _) => format!(
                "this is {}, not {}; use {}",
                other.called, format.name, other.reader
            ),
            other => format!("the device holds {other}, not {}", format.name),
        };
        Some(what)
    }
}

impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::Zeros => f.write_str("nothing but zeros"),
            Content::Ours(format, State::Intact) => f.write_str(format.held),
            Content::Ours(format, State::Unfinished) => f.write_str(format.held_unfinished),
            Content::ThinMetadata => f.write_str("dm-thin pool metadata"),
            Content::Filesystem(name) => write!(f, "{} {name} filesystem", article(name)),
            Content::LvmPhysicalVolume => f.write_str("an LVM2 physical volume"),
            Content::Luks => f.write_str("a LUKS encrypted volume"),
            Content::Swap => f.write_str("a swap area"),
            Content::PartitionTable(kind) => write!(f, "{} {kind} partition table", article(kind)),
            Content::Unknown => f.write_str("data that is neither zeros nor a signature we know"),
        }
    }
}

fn article(word: &str) -> &'static str {
    match word.as_bytes().first() {
        Some(b'e' | b'E' | b'a' | b'A' | b'M' | b'N' | b'X') => "an",
        _ => "a",
    }
}

/// Identifies what `head`, the first bytes of a device, holds: one of the suite's
/// [`crate::FORMATS`] first, then the other signatures we know. The more specific
/// signatures at offset 0 are tried first, because a format's own data (a log's bitmap, a
/// superblock's fields) may happen to contain another format's magic further in.
pub fn identify(head: &[u8]) -> Content {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    for format in crate::FORMATS {
        if let Some(state) = (format.recognise)(head) {
            return Content::Ours(format, state);
        }
    }
    let pdata_magic = head.get(MAGIC_OFFSET..MAGIC_OFFSET + 8);
    if pdata_magic.map(LE::read_u64) == Some(THIN_MAGIC) {
        return Content::ThinMetadata;
    }
    if at(0, b"XFSB") {
        return Content::Filesystem("XFS");
    }
    if at(0, b"LUKS\xba\xbe") {
        return Content::Luks;
    }
    if [0, 512]
        .iter()
        .any(|&o| at(o, &CRAMFS_MAGIC) || at(o, &swapped(CRAMFS_MAGIC)))
    {
        return Content::Filesystem("cramfs");
    }
    if at(0, &BFS_MAGIC) {
        return Content::Filesystem("BFS");
    }
    if (0..4).any(|s| at(s * 512, b"LABELONE") && at(s * 512 + 24, b"LVM2 001")) {
        return Content::LvmPhysicalVolume;
    }
    if let Some(name) = ext_filesystem(head) {
        return Content::Filesystem(name);
    }
    if is_minix(head) {
        return Content::Filesystem("minix");
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

/// cramfs's magic 0x28CD3D45 as a little-endian host writes it; big-endian images have it
/// byte-swapped, and images with a boot sector before them have it at byte 512.
const CRAMFS_MAGIC: [u8; 4] = [0x45, 0x3D, 0xCD, 0x28];
/// The SCO boot filesystem's magic 0x1BADFACE, little-endian, at byte 0.
const BFS_MAGIC: [u8; 4] = [0xCE, 0xFA, 0xAD, 0x1B];
/// Offset of the minix superblock.
const MINIX_SB: usize = 1024;
/// The magics of minix versions 1 and 2 (14- and 30-character names each), at offset 16
/// of the superblock.
const MINIX_MAGICS: [u16; 4] = [0x137F, 0x138F, 0x2468, 0x2478];
/// The magic of minix version 3, at offset 24 of its (wider) superblock.
const MINIX3_MAGIC: u16 = 0x4D5A;

fn swapped(magic: [u8; 4]) -> [u8; 4] {
    let [a, b, c, d] = magic;
    [d, c, b, a]
}

/// A minix superblock at byte 1024, of either byte order: one of the magics, and inode and
/// zone bitmaps that are not empty (a two-byte magic alone is too weak a sign).
fn is_minix(head: &[u8]) -> bool {
    let Some(sb) = head.get(MINIX_SB..MINIX_SB + 32) else {
        return false;
    };
    let either_order = |at: usize, magic: u16| {
        let found = LE::read_u16(&sb[at..]);
        found == magic || found.swap_bytes() == magic
    };
    let nonzero = |at: usize| sb[at..at + 2] != [0, 0];
    let v1_v2 = MINIX_MAGICS.iter().any(|&m| either_order(16, m)) && nonzero(4) && nonzero(6);
    let v3 = either_order(24, MINIX3_MAGIC) && nonzero(6) && nonzero(8);
    v1_v2 || v3
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
    let mut buf = AlignedBuf::zeroed(crate::cast::index(len));
    io.read_at(buf.as_mut_slice(), 0)?;
    Ok(identify(buf.as_slice()))
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use crate::era::format::{superblock::SUPERBLOCK_MAGIC as ERA_MAGIC, BUILD_IN_PROGRESS};
    use crate::log::format::UNDO_IN_PROGRESS;

    const ERA: &Format = &crate::era::format::FORMAT;
    const LOG: &Format = &crate::log::format::FORMAT;
    const ERA_METADATA: Content = Content::Ours(ERA, State::Intact);
    const ERA_UNFINISHED: Content = Content::Ours(ERA, State::Unfinished);
    const DIRTY_LOG: Content = Content::Ours(LOG, State::Intact);
    const LOG_UNFINISHED: Content = Content::Ours(LOG, State::Unfinished);
    const CACHE_METADATA: Content = Content::Ours(&crate::cache::format::FORMAT, State::Intact);

    fn with(offset: usize, bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; PROBE_BYTES as usize];
        v[offset..offset + bytes.len()].copy_from_slice(bytes);
        v
    }

    #[test]
    fn each_signature_is_recognised_at_its_offset() {
        let cases: Vec<(Vec<u8>, Content)> = vec![
            (vec![0; 8192], Content::Zeros),
            (with(0, BUILD_IN_PROGRESS), ERA_UNFINISHED),
            (with(32, &ERA_MAGIC.to_le_bytes()), ERA_METADATA),
            (with(32, &THIN_MAGIC.to_le_bytes()), Content::ThinMetadata),
            (with(32, &[0x03, 0xC4, 0x18]), CACHE_METADATA),
            (with(0, &[0x72, 0x52, 0x69, 0x4D]), DIRTY_LOG),
            (with(0, UNDO_IN_PROGRESS), LOG_UNFINISHED),
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
        assert_eq!(identify(&[0x72, 0x52, 0x69, 0x4D]), DIRTY_LOG);
        assert_eq!(identify(b"XFSB"), Content::Filesystem("XFS"));
    }

    #[test]
    fn writers_replace_only_zeros_and_their_own_format() {
        assert!(ERA_METADATA.replaceable_by(ERA));
        assert!(ERA_UNFINISHED.replaceable_by(ERA));
        assert!(!ERA_METADATA.replaceable_by(LOG));
        assert!(!ERA_UNFINISHED.replaceable_by(LOG));
        assert!(DIRTY_LOG.replaceable_by(LOG));
        assert!(!DIRTY_LOG.replaceable_by(ERA));
        assert!(Content::Zeros.replaceable_by(LOG) && Content::Zeros.replaceable_by(ERA));
        assert!(!Content::Unknown.replaceable_by(ERA) && !Content::Unknown.replaceable_by(LOG));
        assert!(!Content::Filesystem("ext4").replaceable_by(ERA));
        assert!(!Content::ThinMetadata.replaceable_by(ERA));
    }

    #[test]
    fn a_repair_in_place_also_works_on_what_it_cannot_name() {
        assert!(Content::Unknown.repairable_in_place_by(LOG));
        assert!(DIRTY_LOG.repairable_in_place_by(LOG));
        // The undo run again finishes it; another repair says so (its magic is not a log's).
        assert!(LOG_UNFINISHED.repairable_in_place_by(LOG));
        assert!(!LOG_UNFINISHED.replaceable_by(LOG));
        assert!(!LOG_UNFINISHED.repairable_in_place_by(ERA));
        assert!(!ERA_METADATA.repairable_in_place_by(LOG));
        assert!(!Content::Filesystem("XFS").repairable_in_place_by(LOG));
    }

    /// A minix superblock (version 3's layout if `v3`, else that of versions 1 and 2) with
    /// `magic` in the byte order `to_bytes` gives, and one block in each bitmap.
    fn minix(magic: u16, v3: bool, to_bytes: fn(u16) -> [u8; 2]) -> Vec<u8> {
        let mut h = vec![0u8; PROBE_BYTES as usize];
        let sb = &mut h[MINIX_SB..];
        let (imap, zmap, magic_at) = if v3 { (6, 8, 24) } else { (4, 6, 16) };
        sb[imap..imap + 2].copy_from_slice(&to_bytes(1));
        sb[zmap..zmap + 2].copy_from_slice(&to_bytes(1));
        sb[magic_at..magic_at + 2].copy_from_slice(&to_bytes(magic));
        h
    }

    #[test]
    fn minix_is_recognised_in_every_version_and_byte_order() {
        let minix_fs = Content::Filesystem("minix");
        for order in [u16::to_le_bytes, u16::to_be_bytes] {
            for magic in [0x137F, 0x138F, 0x2468, 0x2478] {
                assert_eq!(
                    identify(&minix(magic, false, order)),
                    minix_fs,
                    "{magic:#x}"
                );
            }
            assert_eq!(identify(&minix(0x4D5A, true, order)), minix_fs);
        }
        // The magic at byte 1040 (0x410): 7F 13 for version 1 on a little-endian host.
        let v1 = minix(0x137F, false, u16::to_le_bytes);
        assert_eq!(&v1[1040..1042], &[0x7F, 0x13]);
        // A magic alone, with empty bitmaps, is not enough.
        assert_eq!(
            identify(&with(1040, &0x137Fu16.to_le_bytes())),
            Content::Unknown
        );
        // Version 3's magic at version 1's offset is not minix.
        let wrong = minix(0x4D5A, false, u16::to_le_bytes);
        assert_eq!(identify(&wrong), Content::Unknown);
        // ext's magic wins: parts of an ext superblock can look like minix's.
        let mut ext = minix(0x137F, false, u16::to_le_bytes);
        ext[1080..1082].copy_from_slice(&[0x53, 0xEF]);
        assert_eq!(identify(&ext), Content::Filesystem("ext2"));
    }

    #[test]
    fn cramfs_and_bfs_are_recognised() {
        let cramfs = Content::Filesystem("cramfs");
        assert_eq!(identify(&with(0, &0x28CD_3D45u32.to_le_bytes())), cramfs);
        assert_eq!(identify(&with(0, &0x28CD_3D45u32.to_be_bytes())), cramfs);
        assert_eq!(identify(&with(512, &0x28CD_3D45u32.to_le_bytes())), cramfs);
        assert_eq!(
            identify(&with(0, &0x1BAD_FACEu32.to_le_bytes())),
            Content::Filesystem("BFS")
        );
        assert_eq!(
            identify(&with(4, &0x1BAD_FACEu32.to_le_bytes())),
            Content::Unknown
        );
    }

    #[test]
    fn contents_are_named_with_the_right_article() {
        assert_eq!(
            Content::PartitionTable("MBR").to_string(),
            "an MBR partition table"
        );
        assert_eq!(
            Content::PartitionTable("GPT").to_string(),
            "a GPT partition table"
        );
        assert_eq!(
            Content::Filesystem("minix").to_string(),
            "a minix filesystem"
        );
        assert_eq!(Content::Filesystem("BFS").to_string(), "a BFS filesystem");
    }

    #[test]
    fn readers_are_told_what_they_were_given() {
        let advice = |c: Content, f| c.advice(f).unwrap_or_default();
        assert!(advice(DIRTY_LOG, ERA).contains("use log_dump"));
        assert!(advice(ERA_METADATA, LOG).contains("use era_dump"));
        assert!(advice(ERA_UNFINISHED, ERA).contains("run it again"));
        assert!(advice(LOG_UNFINISHED, LOG).contains("run the same --undo again"));
        assert!(advice(LOG_UNFINISHED, ERA).contains("use log_dump"));
        assert!(advice(Content::Zeros, ERA).contains("all zeros"));
        assert_eq!(
            advice(Content::Filesystem("ext4"), ERA),
            "the device holds an ext4 filesystem, not dm-era metadata"
        );
        assert_eq!(Content::Unknown.advice(ERA), None);
    }
}
