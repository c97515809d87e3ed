//! The reader against metadata built by the pdata writers ([`super::example`]): what it
//! lists, and the one error it gives for each kind of damage.

// Tests build their fixtures with casts of small, known values.
#![allow(clippy::cast_possible_truncation)]

use super::error::CacheError;
use super::example::Synthetic;
use super::format::superblock::{Superblock, CLEAN_SHUTDOWN, NEEDS_CHECK};
use super::format::SUPERBLOCK;
use super::reader::{CacheMetadata, Mapping};
use crate::pdata::btree::node::Node;
use crate::pdata::checksum::{reseal, BlockKind};
use crate::pdata::error::{Error, Fault, ReadError};
use crate::pdata::io::{BlockIo, MemIo};

/// The test's mapping: every third cache block holds origin block `5 * c + 1`, dirty when
/// `c` is a multiple of 7 (computed here, independently of the reader).
fn mapped(c: u64) -> Option<(u64, bool)> {
    (c % 3 == 0).then_some((5 * c + 1, c % 7 == 0))
}

fn synthetic(version: u32, cache_blocks: u32) -> Synthetic {
    Synthetic {
        version,
        flags: CLEAN_SHUTDOWN,
        data_block_size: 128,
        cache_blocks,
        origin_sectors: Some(128 * 5 * u64::from(cache_blocks) + 128),
    }
}

/// The metadata of `s` on a device of the blocks it needs.
fn image(s: &Synthetic) -> MemIo {
    image_on(s, s.metadata_blocks())
}

fn image_on(s: &Synthetic, blocks: u64) -> MemIo {
    let io = MemIo::new(blocks);
    s.write(&io, &mapped).unwrap();
    io
}

fn open(io: MemIo) -> Result<CacheMetadata, CacheError> {
    CacheMetadata::from_io(Box::new(io))
}

fn list(md: &CacheMetadata) -> Result<Vec<Mapping>, CacheError> {
    md.mappings()?.collect()
}

fn expected(cache_blocks: u64, clean: bool) -> Vec<Mapping> {
    (0..cache_blocks)
        .filter_map(|c| {
            mapped(c).map(|(oblock, dirty)| Mapping {
                cblock: c,
                oblock,
                dirty: dirty || !clean,
                recorded_dirty: dirty,
            })
        })
        .collect()
}

#[test]
fn both_versions_list_every_valid_mapping_with_its_dirty_flag() {
    // Lengths around one mapping-array block (509 values) and past one dirty-bitset block
    // (32,576 bits), so that both arrays span several blocks and end part-full.
    for version in [1, 2] {
        for n in [0u32, 1, 509, 510, 32_576, 70_001] {
            let md = open(image(&synthetic(version, n))).unwrap();
            assert_eq!(md.superblock().version, version);
            let got = list(&md).unwrap();
            assert!(
                got == expected(n.into(), true),
                "version {version}, {n} blocks"
            );
        }
    }
}

#[test]
fn the_listing_a_block_at_a_time_is_the_listing_one_by_one() {
    for version in [1, 2] {
        let md = open(image(&synthetic(version, 2_000))).unwrap();
        let mut mappings = md.mappings().unwrap();
        // One by one into the first block, then the rest of it and the others at once.
        let mut got: Vec<Mapping> = mappings.by_ref().take(3).collect::<Result<_, _>>().unwrap();
        let mut blocks = 0;
        while mappings.next_block(&mut got).unwrap() {
            blocks += 1;
        }
        assert_eq!(got, expected(2_000, true), "version {version}");
        // 2,000 entries: the first of 4 blocks (509 each) finished, then 3 more.
        assert_eq!(blocks, 4);
        assert!(!mappings.next_block(&mut got).unwrap());
        assert!(mappings.next().is_none());
    }
}

#[test]
fn after_an_unclean_shutdown_every_mapped_block_is_dirty_as_the_kernel_sees_it() {
    for version in [1, 2] {
        let mut s = synthetic(version, 600);
        s.flags = 0;
        let md = open(image(&s)).unwrap();
        assert_eq!(
            list(&md).unwrap(),
            expected(600, false),
            "version {version}"
        );
    }
}

/// Rewrites block 0 of `io` after `change`, with a good checksum.
fn edit_superblock(io: &MemIo, change: impl Fn(&mut Superblock)) {
    let mut b = io.read_new(0).unwrap();
    let mut sb = Superblock::unpack(&b);
    change(&mut sb);
    sb.pack(&mut b);
    reseal(&mut b, SUPERBLOCK);
    io.write(0, &b).unwrap();
}

/// The location of array block `i` of the array rooted at `root` (a one-leaf b-tree).
fn array_block(io: &MemIo, root: u64, i: usize) -> u64 {
    let b = io.read_new(root).unwrap();
    let node = Node::parse(&b, root, 8).unwrap();
    u64::from_le_bytes(node.value(i).try_into().unwrap())
}

fn metadata_error(r: Result<CacheMetadata, CacheError>) -> Error {
    match r {
        Err(CacheError::Read(ReadError::Metadata(e))) => e,
        Err(other) => panic!("not a metadata error: {other}"),
        Ok(_) => panic!("opened"),
    }
}

fn listing_error(md: &CacheMetadata) -> Error {
    match list(md) {
        Err(CacheError::Read(ReadError::Metadata(e))) => e,
        Err(other) => panic!("not a metadata error: {other}"),
        Ok(m) => panic!("listed {} mappings", m.len()),
    }
}

#[test]
fn a_damaged_superblock_is_one_error_naming_block_0() {
    let io = image(&synthetic(2, 10));
    let mut b = io.read_new(0).unwrap();
    b[300] ^= 1;
    io.write(0, &b).unwrap();
    let e = metadata_error(open(io));
    assert_eq!(
        (e.at, &e.fault),
        (Some((SUPERBLOCK, 0)), &Fault::BadChecksum)
    );
    assert_eq!(
        e.to_string(),
        "superblock at block 0: bad checksum in superblock"
    );
}

#[test]
fn wrong_magic_and_unsupported_version_are_refused() {
    for (change, want) in [
        (
            (|sb: &mut Superblock| sb.magic = 6_142_003) as fn(&mut Superblock),
            "superblock at block 0: bad magic 0x5db833",
        ),
        (
            |sb: &mut Superblock| sb.version = 3,
            "superblock at block 0: unsupported version 3 (dm-cache metadata is version 1 or 2)",
        ),
    ] {
        let io = image(&synthetic(1, 10));
        edit_superblock(&io, change);
        assert_eq!(metadata_error(open(io)).to_string(), want);
    }
}

#[test]
fn needs_check_is_refused_with_its_own_error() {
    let io = image(&synthetic(2, 10));
    edit_superblock(&io, |sb| sb.flags |= NEEDS_CHECK);
    assert!(matches!(open(io), Err(CacheError::NeedsCheck)));
}

#[test]
fn a_truncated_copy_is_refused_before_any_mapping_is_read() {
    let io = image_on(&synthetic(2, 2000), 30);
    let mut bytes = io.into_bytes();
    bytes.truncate(10 * 4096 + 100);
    let e = metadata_error(open(MemIo::from_bytes(bytes)));
    assert_eq!(
        e.to_string(),
        "superblock at block 0: the space map counts 30 metadata blocks, the device holds \
         only 10: a truncated copy?"
    );
    let e = metadata_error(open(MemIo::new(0)));
    assert_eq!(e.fault, Fault::OutOfRange { limit: 0 });
}

#[test]
fn a_mapping_past_the_origin_is_an_error_naming_its_cache_block() {
    // Cache block 9 holds origin block 46, the highest.
    let md = open(image(&synthetic(1, 10)))
        .unwrap()
        .with_origin_blocks(46);
    let e = listing_error(&md);
    let loc = array_block(&image(&synthetic(1, 10)), md.superblock().mapping_root, 0);
    assert_eq!(
        e.to_string(),
        format!(
            "mapping array, array block at block {loc}: cache block 9: maps origin block 46, \
             past the origin's 46 blocks"
        )
    );
    let md = open(image(&synthetic(1, 10)))
        .unwrap()
        .with_origin_blocks(47);
    assert_eq!(list(&md).unwrap(), expected(10, true));
}

#[test]
fn the_discard_geometry_of_a_clean_shutdown_bounds_the_origin() {
    // 10 cache blocks: an origin of 51 blocks of 128 sectors, one discard block each.
    let md = open(image(&synthetic(2, 10))).unwrap();
    assert_eq!(md.origin_bound(), Some(51));
    let mut s = synthetic(2, 10);
    s.origin_sectors = Some(128 * 46);
    let e = listing_error(&open(image(&s)).unwrap());
    assert!(
        e.to_string()
            .ends_with("maps origin block 46, past the origin's 46 blocks"),
        "{e}"
    );
    s.flags = 0;
    let md = open(image(&s)).unwrap();
    assert_eq!(md.origin_bound(), None, "not shut down cleanly: no bound");
    s.origin_sectors = None;
    s.flags = CLEAN_SHUTDOWN;
    let md = open(image(&s)).unwrap();
    assert_eq!(
        md.origin_bound(),
        None,
        "never suspended: no discard geometry"
    );
}

#[test]
fn a_damaged_array_block_is_named_with_its_structure_and_block() {
    for (version, root_of, structure) in [
        (
            1,
            (|sb: &Superblock| sb.mapping_root) as fn(&Superblock) -> u64,
            "mapping array",
        ),
        (2, |sb: &Superblock| sb.mapping_root, "mapping array"),
        (2, |sb: &Superblock| sb.dirty_root, "dirty bitset"),
    ] {
        // Two blocks of dirty bits: the second one's cache blocks start at 32,576.
        let io = image(&synthetic(version, 40_000));
        let sb = Superblock::unpack(&io.read_new(0).unwrap());
        let loc = array_block(&io, root_of(&sb), 1);
        let mut b = io.read_new(loc).unwrap();
        b[2000] ^= 0x10;
        io.write(loc, &b).unwrap();
        let md = open(io).unwrap();
        // The mappings of the intact blocks before it come first.
        let got: Vec<_> = md.mappings().unwrap().collect();
        let (last, before) = got.split_last().unwrap();
        assert!(before.iter().all(Result::is_ok) && !before.is_empty());
        match last {
            Err(CacheError::Read(ReadError::Metadata(e))) => assert_eq!(
                e.to_string(),
                format!("{structure}, array block at block {loc}: bad checksum")
            ),
            other => panic!("{structure}: {other:?}"),
        }
    }
}

#[test]
fn the_listing_a_block_at_a_time_ends_at_the_first_damaged_block() {
    let io = image(&synthetic(2, 2_000));
    let sb = Superblock::unpack(&io.read_new(0).unwrap());
    let loc = array_block(&io, sb.mapping_root, 1);
    let mut b = io.read_new(loc).unwrap();
    b[2000] ^= 0x10;
    io.write(loc, &b).unwrap();
    let md = open(io).unwrap();
    let mut mappings = md.mappings().unwrap();
    let mut got = Vec::new();
    assert!(mappings.next_block(&mut got).unwrap());
    assert_eq!(got, expected(509, true));
    match mappings.next_block(&mut got) {
        Err(CacheError::Read(ReadError::Metadata(e))) => assert_eq!(
            e.to_string(),
            format!("mapping array, array block at block {loc}: bad checksum")
        ),
        other => panic!("{other:?}"),
    }
    assert!(!mappings.next_block(&mut got).unwrap());
    assert!(mappings.next().is_none());
}

#[test]
fn entries_only_corruption_can_make_are_errors() {
    for (version, value, want) in [
        (1, 0x5_0004u64, "flags 0x4 not defined in version 1"),
        (2, 0x5_0003, "flags 0x3 not defined in version 2"),
        (
            1,
            0x5_0000,
            "unmapped, yet holds origin block 5 and flags 0x0",
        ),
    ] {
        let io = image(&synthetic(version, 10));
        let sb = Superblock::unpack(&io.read_new(0).unwrap());
        let loc = array_block(&io, sb.mapping_root, 0);
        let mut b = io.read_new(loc).unwrap();
        // Cache block 4 is unmapped in the test's mapping.
        b[24 + 4 * 8..24 + 5 * 8].copy_from_slice(&value.to_le_bytes());
        reseal(&mut b, BlockKind::ARRAY_BLOCK);
        io.write(loc, &b).unwrap();
        let e = listing_error(&open(io).unwrap());
        assert_eq!(
            e.to_string(),
            format!("mapping array, array block at block {loc}: cache block 4: {want}")
        );
    }
}

#[test]
fn an_array_shorter_or_longer_than_cache_blocks_is_refused_before_listing() {
    for (cache_blocks, want) in [
        (
            2000,
            "mapping array: holds 3 array blocks, but 2000 values need 4",
        ),
        (
            500,
            "mapping array: array block 1 is past the end of an array of 500 values",
        ),
    ] {
        let io = image(&synthetic(1, 1500));
        edit_superblock(&io, |sb| sb.cache_blocks = cache_blocks);
        let md = open(io).unwrap();
        match md.mappings() {
            Err(CacheError::Read(ReadError::Metadata(e))) => assert_eq!(e.to_string(), want),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("{cache_blocks}: listed"),
        }
    }
    let io = image(&synthetic(1, 1500));
    edit_superblock(&io, |sb| sb.cache_blocks = 1400);
    let e = listing_error(&open(io).unwrap());
    assert!(
        e.to_string().ends_with("holds 482 values, expected 382"),
        "{e}"
    );
}

#[test]
fn cache_blocks_beyond_what_the_metadata_can_hold_is_refused_at_open() {
    let io = image_on(&synthetic(1, 10), 20);
    edit_superblock(&io, |sb| sb.cache_blocks = u32::MAX);
    assert_eq!(
        metadata_error(open(io)).to_string(),
        "superblock at block 0: cache_blocks 4294967295 needs a larger mapping array than 20 \
         metadata blocks hold"
    );
}

#[test]
fn a_root_pointing_at_another_kind_of_block_names_it() {
    let io = image(&synthetic(2, 10));
    edit_superblock(&io, |sb| sb.mapping_root = 0);
    let md = open(io).unwrap();
    match md.mappings() {
        Err(CacheError::Read(ReadError::Metadata(e))) => assert_eq!(
            e.to_string(),
            "mapping array, node at block 0: wrong block type (this is a superblock)"
        ),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("listed"),
    }
}

#[test]
fn open_names_a_file_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing");
    match CacheMetadata::open(&path) {
        Err(e @ CacheError::Read(ReadError::Open { .. })) => {
            assert!(
                e.to_string().starts_with(&path.display().to_string()),
                "{e}"
            )
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened"),
    }
}

/// The kind of an intact block of cache metadata, if it is one.
fn kind_of(b: &[u8], loc: u64) -> Option<BlockKind> {
    super::format::BLOCK_KINDS
        .into_iter()
        .find(|&k| crate::pdata::checksum::verify(b, k, loc).is_ok())
}

#[test]
fn hostile_values_behind_good_checksums_end_in_an_error_or_a_bounded_list() {
    // Fields changed in blocks that still pass their checksums: what a checksum cannot
    // catch. Every run must end, without a panic, in a list no longer than the cache or
    // in one error.
    let mut rng = crate::pdata::seeded::SplitMix(22);
    let (mut errors, mut lists) = (0, 0);
    for round in 0..400u32 {
        let version = 1 + round % 2;
        let io = image_on(&synthetic(version, 1500), 30);
        for _ in 0..1 + rng.below(3) {
            let loc = rng.below(30);
            let mut b = io.read_new(loc).unwrap();
            let Some(kind) = kind_of(&b, loc) else {
                continue;
            };
            // Mostly the headers and the first values, where lengths and roots live.
            let span = if rng.below(2) == 0 { 300 } else { 4092 };
            let at = 4 + rng.below(span) as usize;
            b[at] = match rng.below(3) {
                0 => 0,
                1 => 0xFF,
                _ => b[at] ^ (1 << rng.below(8)),
            };
            reseal(&mut b, kind);
            io.write(loc, &b).unwrap();
        }
        match open(io).map(|md| list(&md).map(|l| l.len())) {
            Ok(Ok(n)) => {
                assert!(n <= 1500, "round {round}: {n} mappings");
                lists += 1;
            }
            Ok(Err(_)) | Err(_) => errors += 1,
        }
    }
    assert!(errors > 50 && lists > 50, "{errors} errors, {lists} lists");
}

#[test]
fn only_the_suspended_open_reads_past_a_writers_lock() {
    use crate::pdata::io::{FileIo, OpenMode};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.img");
    std::fs::write(&path, image(&synthetic(2, 10)).into_bytes()).unwrap();
    let _writer = FileIo::open(&path, OpenMode::Write).unwrap();
    match CacheMetadata::open(&path) {
        Err(CacheError::Read(ReadError::Open { source, .. })) => {
            assert_eq!(source.kind(), std::io::ErrorKind::WouldBlock)
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened past the lock"),
    }
    let md = CacheMetadata::open_suspended(&path).unwrap();
    assert_eq!(list(&md).unwrap(), expected(10, true));
}
