//! era_check against the kernel-written images, and against corrupted variants of them.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::*;
use era_log_tools::era::format::superblock::Superblock;
use era_log_tools::pdata::btree::node::{NodeHeader, NODE_HEADER_SIZE};
use era_log_tools::pdata::checksum::BlockKind;
use era_log_tools::pdata::space_map::bitmap::{get_code, set_code};
use era_log_tools::pdata::space_map::index::IndexBlock;

/// An image with a held snapshot and a current writeset.
const LIVE_SNAP: &str = "era-snap-held.live-snap-held.img.gz";
/// A cleanly removed image without a snapshot, one writeset in its tree.
const BASIC: &str = "era-basic.meta.img.gz";

fn sb(img: &[u8]) -> Superblock {
    Superblock::unpack(block(img, 0))
}

/// Asserts exit 1, no panic, and a message naming `structure`.
fn assert_fails_naming(img: &[u8], structure: &str) {
    run_on_bytes("era_check", img, &[]).assert_error(structure);
}

/// The leftmost leaf below `root`.
fn first_leaf(img: &[u8], mut loc: u64) -> u64 {
    loop {
        let h = NodeHeader::unpack(block(img, loc));
        if h.flags == 2 {
            return loc;
        }
        loc = le64(
            block(img, loc),
            NODE_HEADER_SIZE + 8 * h.max_entries as usize,
        );
    }
}

/// Value `i` of the node at `loc`.
fn value(img: &[u8], loc: u64, i: usize) -> &[u8] {
    let h = NodeHeader::unpack(block(img, loc));
    let start = NODE_HEADER_SIZE + 8 * h.max_entries as usize + h.value_size as usize * i;
    &block(img, loc)[start..start + h.value_size as usize]
}

/// The first array block of the array at `root`.
fn first_array_block(img: &[u8], root: u64) -> u64 {
    le64(value(img, first_leaf(img, root), 0), 0)
}

/// The bitset root of the first writeset in the writeset tree.
fn first_writeset_root(img: &[u8]) -> u64 {
    let leaf = first_leaf(img, sb(img).writeset_tree_root);
    assert!(
        NodeHeader::unpack(block(img, leaf)).nr_entries > 0,
        "fixture has a writeset"
    );
    le64(value(img, leaf, 0), 4)
}

#[test]
fn every_kernel_era_image_passes() {
    let images = era_images();
    assert!(images.len() >= 16, "fixtures missing: {images:?}");
    for name in images {
        let out = run_on_bytes("era_check", &fixture(&name), &[]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        assert!(!out.stderr.contains("error"), "{name}: {}", out.stderr);
    }
}

#[test]
fn snapshot_view_of_images_with_a_held_snapshot_passes() {
    let mut seen = 0;
    for name in era_images() {
        let img = fixture(&name);
        let out = run_on_bytes("era_check", &img, &["--metadata-snap"]);
        if sb(&img).metadata_snap != 0 {
            seen += 1;
            assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        } else {
            assert_eq!(out.code, 1, "{name}");
            assert!(out.stderr.contains("no current metadata snap"), "{name}");
        }
    }
    assert!(seen >= 3, "only {seen} images with a snapshot");
}

#[test]
fn crash_image_reports_nothing_fatal() {
    let out = run_on_bytes(
        "era_check",
        &fixture("era-crash.meta.img.gz"),
        &["--ignore-non-fatal-errors"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("error:"), "{}", out.stderr);
}

#[test]
fn quiet_prints_nothing() {
    let mut img = fixture(BASIC);
    let out = run_on_bytes("era_check", &img, &["-q"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    block_mut(&mut img, 0)[300] ^= 1;
    let out = run_on_bytes("era_check", &img, &["--quiet"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (1, "", "")
    );
}

#[test]
fn superblock_checksum() {
    let mut img = fixture(BASIC);
    block_mut(&mut img, 0)[184] ^= 0x10;
    assert_fails_naming(&img, "superblock at block 0: bad checksum");
}

#[test]
fn superblock_magic() {
    let mut img = fixture(BASIC);
    block_mut(&mut img, 0)[32] ^= 0xff;
    reseal(&mut img, 0, era_log_tools::era::format::SUPERBLOCK);
    assert_fails_naming(&img, "superblock at block 0: bad magic");
}

#[test]
fn superblock_version() {
    let mut img = fixture(BASIC);
    put32(block_mut(&mut img, 0), 40, 2);
    reseal(&mut img, 0, era_log_tools::era::format::SUPERBLOCK);
    assert_fails_naming(&img, "superblock at block 0: unknown superblock version 2");
}

#[test]
fn superblock_blocknr() {
    let mut img = fixture(BASIC);
    put64(block_mut(&mut img, 0), 8, 5);
    reseal(&mut img, 0, era_log_tools::era::format::SUPERBLOCK);
    assert_fails_naming(&img, "superblock at block 0: block number mismatch");
}

#[test]
fn super_block_only_ignores_damage_below_the_superblock() {
    let mut img = fixture(BASIC);
    let root = sb(&img).era_array_root;
    block_mut(&mut img, root)[100] ^= 1;
    assert_eq!(
        run_on_bytes("era_check", &img, &["--super-block-only"]).code,
        0
    );
    assert_eq!(run_on_bytes("era_check", &img, &[]).code, 1);
}

#[test]
fn writeset_tree_node() {
    let mut img = fixture(LIVE_SNAP);
    let root = sb(&img).writeset_tree_root;
    block_mut(&mut img, root)[2000] ^= 0x40;
    assert_fails_naming(
        &img,
        &format!("writeset tree, node at block {root}: bad checksum"),
    );
}

#[test]
fn era_array_btree_node() {
    let mut img = fixture(BASIC);
    let root = sb(&img).era_array_root;
    block_mut(&mut img, root)[64] ^= 0x01;
    assert_fails_naming(
        &img,
        &format!("era array, node at block {root}: bad checksum"),
    );
}

#[test]
fn era_array_block() {
    let mut img = fixture(BASIC);
    let ab = first_array_block(&img, sb(&img).era_array_root);
    block_mut(&mut img, ab)[500] ^= 0x01;
    assert_fails_naming(
        &img,
        &format!("era array, array block at block {ab}: bad checksum"),
    );
}

#[test]
fn bitset_block_checksum() {
    let mut img = fixture(BASIC);
    let ab = first_array_block(&img, first_writeset_root(&img));
    block_mut(&mut img, ab)[40] ^= 0x01;
    let out = run_on_bytes("era_check", &img, &[]);
    out.assert_error(&format!("array block at block {ab}: bad checksum"));
    assert!(out.stderr.contains("writeset tree (era "), "{}", out.stderr);
}

#[test]
fn bitset_block_wrong_blocknr_under_a_valid_checksum() {
    let mut img = fixture(BASIC);
    let ab = first_array_block(&img, first_writeset_root(&img));
    put64(block_mut(&mut img, ab), 16, ab + 1);
    reseal(&mut img, ab, BlockKind::ARRAY_BLOCK);
    let out = run_on_bytes("era_check", &img, &[]);
    assert_eq!(out.code, 1);
    let want = format!(
        "array block at block {ab}: block number mismatch (the block says it is block {})",
        ab + 1
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert!(out.stderr.contains("writeset tree (era "), "{}", out.stderr);
}

#[test]
fn space_map_index_block() {
    let mut img = fixture(BASIC);
    let index = sb(&img).sm_root.bitmap_root;
    block_mut(&mut img, index)[20] ^= 0x01;
    assert_fails_naming(
        &img,
        &format!("metadata space map, space-map index block at block {index}: bad checksum"),
    );
}

#[test]
fn space_map_bitmap_block() {
    let mut img = fixture(BASIC);
    let index = sb(&img).sm_root.bitmap_root;
    let bitmap = IndexBlock::unpack(block(&img, index)).entries[0].blocknr;
    block_mut(&mut img, bitmap)[3000] ^= 0x01;
    assert_fails_naming(
        &img,
        &format!("metadata space map, space-map bitmap block at block {bitmap}: bad checksum"),
    );
}

#[test]
fn wrong_reference_count_with_every_checksum_valid() {
    let mut img = fixture(BASIC);
    let index = sb(&img).sm_root.bitmap_root;
    let bitmap = IndexBlock::unpack(block(&img, index)).entries[0].blocknr;
    let ea = sb(&img).era_array_root;
    assert_eq!(get_code(block(&img, bitmap), ea), 1);
    set_code(block_mut(&mut img, bitmap), ea, 2);
    reseal(&mut img, bitmap, BlockKind::SM_BITMAP);
    assert_fails_naming(
        &img,
        &format!(
            "metadata space map: block {ea} over-counted: 1 references, but the space map holds 2"
        ),
    );
}

#[test]
fn under_count_is_fatal_and_leak_is_not() {
    let img = fixture(BASIC);
    let index = sb(&img).sm_root.bitmap_root;
    let bitmap = IndexBlock::unpack(block(&img, index)).entries[0].blocknr;
    let mut under = img.clone();
    let ea = sb(&img).era_array_root;
    set_code(block_mut(&mut under, bitmap), ea, 0);
    reseal(&mut under, bitmap, BlockKind::SM_BITMAP);
    assert_fails_naming(&under, &format!("block {ea} under-counted"));

    let mut leak = img.clone();
    let free = (1..1024)
        .find(|&b| get_code(block(&img, bitmap), b) == 0)
        .expect("a free block");
    set_code(block_mut(&mut leak, bitmap), free, 1);
    reseal(&mut leak, bitmap, BlockKind::SM_BITMAP);
    let out = run_on_bytes("era_check", &leak, &[]);
    assert_eq!(out.code, 1, "a leak fails by default");
    assert!(out.stderr.contains("have leaked"), "{}", out.stderr);
    assert!(!out.stderr.contains("fatal errors"), "{}", out.stderr);
    let out = run_on_bytes("era_check", &leak, &["--ignore-non-fatal-errors"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn snapshot_pointer_aimed_at_a_zeroed_block() {
    let mut img = fixture(BASIC);
    let last = (img.len() / 4096 - 1) as u64;
    assert!(block(&img, last).iter().all(|&b| b == 0));
    put64(block_mut(&mut img, 0), 216, last);
    reseal(&mut img, 0, era_log_tools::era::format::SUPERBLOCK);
    assert_fails_naming(
        &img,
        &format!("metadata snapshot, superblock at block {last}: bad checksum"),
    );
    let out = run_on_bytes("era_check", &img, &["--metadata-snap"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("metadata snapshot"), "{}", out.stderr);
}

#[test]
fn current_writeset_root_aimed_at_the_era_array() {
    let mut img = fixture(LIVE_SNAP);
    let s = sb(&img);
    assert_ne!(s.current_writeset.root, 0);
    put64(block_mut(&mut img, 0), 192, s.era_array_root);
    reseal(&mut img, 0, era_log_tools::era::format::SUPERBLOCK);
    assert_fails_naming(&img, &format!("current writeset (era {})", s.current_era));
}

#[test]
fn file_truncated_to_half() {
    let img = fixture(BASIC);
    assert_fails_naming(&img[..img.len() / 2], "metadata space map");
}

#[test]
fn too_small_and_xml_inputs_get_the_messages_scripts_grep_for() {
    let out = run_on_bytes("era_check", &[0u8; 100], &[]);
    assert_eq!(out.code, 1);
    assert!(out
        .stderr
        .contains("Metadata device/file too small.  Is this binary metadata?"));
    let xml = b"<superblock uuid=\"\" block_size=\"128\" nr_blocks=\"4\" current_era=\"1\">\n</superblock>";
    let mut padded = xml.to_vec();
    padded.resize(8192, b' ');
    for input in [&xml[..], &padded[..]] {
        let out = run_on_bytes("era_check", input, &[]);
        assert_eq!(out.code, 1);
        assert!(out
            .stderr
            .contains("This looks like XML.  This tool only supports the binary metadata format."));
    }
    let out = run("era_check", &["/nonexistent/era-meta"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("Couldn't find input file"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run("era_check", &[]).code, 2);
    assert_eq!(run("era_check", &["--bogus", "x"]).code, 2);
    assert_eq!(run("era_check", &["--help"]).code, 0);
}

/// A child pointer aimed back at its parent, and one aimed past the device, in an
/// internal node of the era array of the large image.
#[test]
fn reference_cycle_and_out_of_range_child() {
    let img = fixture("era-large.meta.img.gz");
    let root = sb(&img).era_array_root;
    let h = NodeHeader::unpack(block(&img, root));
    assert_eq!(
        h.flags, 1,
        "the large image's era array has an internal root"
    );
    let child0 = NODE_HEADER_SIZE + 8 * h.max_entries as usize;

    let mut cycle = img.clone();
    put64(block_mut(&mut cycle, root), child0 + 8, root);
    reseal(&mut cycle, root, BlockKind::BTREE_NODE);
    assert_fails_naming(
        &cycle,
        &format!("era array, node at block {root}: node reached twice"),
    );

    let mut far = img.clone();
    put64(block_mut(&mut far, root), child0 + 8, 1 << 40);
    reseal(&mut far, root, BlockKind::BTREE_NODE);
    assert_fails_naming(
        &far,
        &format!(
            "era array, node at block {}: block number out of range",
            1u64 << 40
        ),
    );
}

#[test]
fn damage_reached_only_through_the_snapshot_is_named_as_such() {
    let mut img = fixture("era-snap-held.removed-snap-held.img.gz");
    let snap = sb(&img).metadata_snap;
    let snap_sb = Superblock::unpack(block(&img, snap));
    let leaf = first_leaf(&img, snap_sb.writeset_tree_root);
    let era = le64(block(&img, leaf), NODE_HEADER_SIZE);
    let ab = first_array_block(&img, le64(value(&img, leaf, 0), 4));
    block_mut(&mut img, ab)[40] ^= 0x01;
    let want = format!(
        "metadata snapshot writeset tree (era {era}), array block at block {ab}: bad checksum"
    );
    assert_fails_naming(&img, &want);
    let out = run_on_bytes("era_check", &img, &["--metadata-snap"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains(&want), "{}", out.stderr);
}

/// thin-provisioning-tools 0.9 counts only the free entries below the end of the map in an
/// index entry; the kernel counts the rest of the bitmap as free too. The first is a note,
/// any other wrong count a warning (a non-fatal error).
#[test]
fn free_counts_of_older_tools_are_a_note_and_other_wrong_ones_a_warning() {
    let img = fixture(BASIC);
    let s = sb(&img);
    let index = s.sm_root.bitmap_root;
    let in_map_free = (s.sm_root.nr_blocks - s.sm_root.nr_allocated) as u32;
    let with_nr_free = |n: u32| {
        let mut m = img.clone();
        put32(block_mut(&mut m, index), 16 + 8, n);
        reseal(&mut m, index, BlockKind::SM_INDEX);
        m
    };
    let out = run_on_bytes("era_check", &with_nr_free(in_map_free), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains(": note: metadata space map"),
        "{}",
        out.stderr
    );
    let out = run_on_bytes("era_check", &with_nr_free(in_map_free + 1), &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(": warning: metadata space map"),
        "{}",
        out.stderr
    );
}
