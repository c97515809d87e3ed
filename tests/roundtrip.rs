//! unpack/pack round trips of every on-disk structure, on blocks the kernel wrote.

mod common;

use common::*;
use era_log_tools::era::format::superblock::Superblock;
use era_log_tools::era::format::writeset::WritesetDisk;
use era_log_tools::pdata::array::ArrayBlockHeader;
use era_log_tools::pdata::btree::node::{Node, NodeHeader, NODE_HEADER_SIZE};
use era_log_tools::pdata::checksum::{checksum, seal, BlockKind};
use era_log_tools::pdata::io::BLOCK_SIZE;
use era_log_tools::pdata::space_map::index::IndexBlock;
use era_log_tools::pdata::space_map::root::SmRoot;

const IMAGES: [&str; 3] = [
    "era-snap-held.removed-snap-held.img.gz",
    "era-live-carried.live-snap-held.img.gz",
    "era-writeset-pileup.meta.img.gz",
];

/// Every block of `img` that carries a valid checksum, with its kind.
fn typed_blocks(img: &[u8]) -> Vec<(u64, BlockKind)> {
    (0..(img.len() / BLOCK_SIZE) as u64)
        .filter_map(|loc| {
            let b = block(img, loc);
            era_log_tools::era::format::BLOCK_KINDS
                .iter()
                .find(|&&k| checksum(b, k) == le32(b, 0))
                .map(|&k| (loc, k))
        })
        .collect()
}

#[test]
fn superblocks_round_trip_to_the_kernels_bytes() {
    for name in IMAGES {
        let img = fixture(name);
        for (loc, kind) in typed_blocks(&img) {
            if kind != era_log_tools::era::format::SUPERBLOCK {
                continue;
            }
            let b = block(&img, loc);
            let sb = Superblock::parse(b, loc).expect("kernel superblock is valid");
            let mut out = vec![0u8; BLOCK_SIZE];
            sb.pack(&mut out);
            seal(&mut out, kind, loc);
            assert_eq!(out, b, "{name} block {loc}");
            let mut ws = [0u8; 12];
            sb.current_writeset.pack(&mut ws);
            assert_eq!(WritesetDisk::unpack(&ws), sb.current_writeset);
            let mut root = [0u8; 128];
            sb.sm_root.pack(&mut root);
            assert_eq!(&root[..], &b[44..172], "{name} block {loc} sm root");
            assert_eq!(SmRoot::unpack(&root), sb.sm_root);
        }
    }
}

#[test]
fn node_array_and_index_headers_round_trip() {
    let mut seen = [0usize; 5];
    for name in IMAGES {
        let img = fixture(name);
        for (loc, kind) in typed_blocks(&img) {
            let b = block(&img, loc);
            let mut out = b.to_vec();
            match kind {
                BlockKind::BTREE_NODE => {
                    let h = NodeHeader::unpack(b);
                    out[4..NODE_HEADER_SIZE].fill(0xAA);
                    h.pack(&mut out);
                    assert_eq!(h.blocknr, loc);
                    let leaf_vs = if h.flags == 2 { h.value_size } else { 12 };
                    assert!(Node::parse(b, loc, leaf_vs).is_ok(), "{name} node {loc}");
                    seen[0] += 1;
                }
                BlockKind::ARRAY_BLOCK => {
                    let h = ArrayBlockHeader::unpack(b);
                    out[4..24].fill(0xAA);
                    h.pack(&mut out);
                    assert!(ArrayBlockHeader::parse(b, loc, h.value_size).is_ok());
                    seen[1] += 1;
                }
                BlockKind::SM_INDEX => {
                    let ib = IndexBlock::unpack(b);
                    out[4..].fill(0xAA);
                    ib.pack(&mut out);
                    seal(&mut out, kind, loc);
                    seen[2] += 1;
                }
                BlockKind::SM_BITMAP => {
                    seen[3] += 1;
                    continue;
                }
                _ => {
                    assert_eq!(kind, era_log_tools::era::format::SUPERBLOCK);
                    seen[4] += 1;
                    continue;
                }
            }
            assert_eq!(out, b, "{name} block {loc} ({kind})");
        }
    }
    assert!(seen.iter().all(|&n| n > 0), "every kind met: {seen:?}");
}
