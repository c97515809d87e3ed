//! Structure-aware hostile metadata: fields rewritten and checksums re-sealed, so that the
//! damage gets past the checksums to the structure checks behind them.

mod common;

use common::*;
use era_log_tools::era::format::superblock::Superblock;
use era_log_tools::pdata::btree::node::{NodeHeader, NODE_HEADER_SIZE};
use era_log_tools::pdata::checksum::BlockKind;

const BASIC: &str = "era-basic.meta.img.gz";
const LARGE: &str = "era-large.meta.img.gz";

fn sb(img: &[u8]) -> Superblock {
    Superblock::unpack(block(img, 0))
}

fn with_superblock(img: &mut [u8], edit: impl FnOnce(&mut Superblock)) {
    let mut s = sb(img);
    edit(&mut s);
    s.pack(block_mut(img, 0));
    reseal(img, 0, era_log_tools::era::format::SUPERBLOCK);
}

/// Both readers refuse it with the same message.
fn assert_all_tools_fail(img: &[u8], needle: &str) {
    run_on_bytes("era_check", img, &[]).assert_error(needle);
    run_on_bytes("era_invalidate", img, &["--written-since", "1"]).assert_error(needle);
}

#[test]
fn child_pointing_to_its_parent() {
    let mut img = fixture(LARGE);
    let root = sb(&img).era_array_root;
    let h = NodeHeader::unpack(block(&img, root));
    let last_child =
        NODE_HEADER_SIZE + 8 * h.max_entries as usize + 8 * (h.nr_entries as usize - 1);
    put64(block_mut(&mut img, root), last_child, root);
    reseal(&mut img, root, BlockKind::BTREE_NODE);
    assert_all_tools_fail(&img, "node reached twice in one tree");
}

#[test]
fn node_claiming_more_entries_than_fit() {
    let img = fixture(LARGE);
    let root = sb(&img).era_array_root;
    let mut more = img.clone();
    put32(block_mut(&mut more, root), 16, 253);
    reseal(&mut more, root, BlockKind::BTREE_NODE);
    assert_all_tools_fail(&more, "nr_entries 253 exceeds max_entries 252");

    let mut bigger = img.clone();
    put32(block_mut(&mut bigger, root), 20, 4000);
    put32(block_mut(&mut bigger, root), 16, 4000);
    reseal(&mut bigger, root, BlockKind::BTREE_NODE);
    assert_all_tools_fail(&bigger, "max_entries 4000 does not fit in a block");
}

#[test]
fn space_map_claiming_more_blocks_than_the_device_holds() {
    let mut img = fixture(BASIC);
    with_superblock(&mut img, |s| s.sm_root.nr_blocks = 1 << 40);
    let out = run_on_bytes("era_check", &img, &[]);
    out.assert_error("metadata space map: covers 1099511627776 blocks");
}

#[test]
fn nr_blocks_of_2_pow_31_or_more() {
    for n in [1u32 << 31, u32::MAX] {
        let mut img = fixture(BASIC);
        with_superblock(&mut img, |s| s.nr_blocks = n);
        assert_all_tools_fail(&img, &format!("nr_blocks {n} is 2^31 or more"));
    }
}

#[test]
fn nr_blocks_larger_than_the_metadata_can_hold() {
    let mut img = fixture(BASIC);
    with_superblock(&mut img, |s| s.nr_blocks = (1 << 31) - 1);
    assert_all_tools_fail(
        &img,
        "needs a larger era array than 1024 metadata blocks can hold",
    );
}

#[test]
fn eras_above_current_era_and_wrap_around() {
    // The basic image ends in era 4 with eras up to 4 in its era array and writeset tree.
    // Winding the current era back to 2 is what a wrapped counter looks like.
    let mut img = fixture(BASIC);
    with_superblock(&mut img, |s| s.current_era = 2);
    let out = run_on_bytes("era_check", &img, &[]);
    out.assert_error("above the current era 2");
    assert!(
        out.stderr.contains("invalid era value at data block"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("fatal errors"),
        "non-fatal: {}",
        out.stderr
    );
    let out = run_on_bytes("era_check", &img, &["--ignore-non-fatal-errors"]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let out = run_on_bytes("era_invalidate", &img, &["--written-since", "2"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("wrapped around"), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "<blocks>\n  <range begin=\"0\" end=\"1024\"/>\n</blocks>\n"
    );
}

#[test]
fn writeset_key_beyond_32_bits() {
    let mut img = fixture(BASIC);
    let wt = sb(&img).writeset_tree_root;
    put64(block_mut(&mut img, wt), NODE_HEADER_SIZE, 1 << 40);
    reseal(&mut img, wt, BlockKind::BTREE_NODE);
    assert_all_tools_fail(&img, "is not a 32-bit era");
}

#[test]
fn writeset_root_of_zero_and_root_aimed_at_the_era_array() {
    let img = fixture(BASIC);
    let wt = sb(&img).writeset_tree_root;
    let h = NodeHeader::unpack(block(&img, wt));
    let value = NODE_HEADER_SIZE + 8 * h.max_entries as usize;
    let mut zero = img.clone();
    put64(block_mut(&mut zero, wt), value + 4, 0);
    reseal(&mut zero, wt, BlockKind::BTREE_NODE);
    run_on_bytes("era_check", &zero, &[]).assert_error("bitset root is 0");

    let mut at_sb = img.clone();
    let era_array = sb(&img).era_array_root;
    put64(block_mut(&mut at_sb, wt), value + 4, era_array);
    reseal(&mut at_sb, wt, BlockKind::BTREE_NODE);
    assert_all_tools_fail(&at_sb, "value size 4, expected 8");
}

#[test]
fn array_block_shorter_than_the_array() {
    let mut img = fixture(BASIC);
    let ea = sb(&img).era_array_root;
    // 1024 values: a full block of 1018, then one of 6.
    let last = le64(block(&img, ea), NODE_HEADER_SIZE + 8 * 252 + 8);
    assert_eq!(le32(block(&img, last), 8), 6);
    put32(block_mut(&mut img, last), 8, 5);
    reseal(&mut img, last, BlockKind::ARRAY_BLOCK);
    assert_all_tools_fail(&img, "era array: holds 1023 values, expected 1024");
}
