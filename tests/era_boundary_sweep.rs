//! Header fields of every kind of block at their boundary values, re-sealed: no reader
//! panics, and era_check rejects every change that alters what a reader sees.

mod common;

use std::collections::BTreeMap;

use common::*;
use era_log_tools::era::check::{check, CheckOptions};
use era_log_tools::era::dump::{dump, DumpOptions};
use era_log_tools::era::invalidate::written_since;
use era_log_tools::era::superblock::Superblock;
use era_log_tools::era::view::View;
use era_log_tools::pdata::btree::node::Node;
use era_log_tools::pdata::checksum::BlockKind;
use era_log_tools::pdata::io::{MemIo, BLOCK_SIZE};
use era_log_tools::pdata::report::Severity;

/// What a block referenced by the metadata is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Superblock,
    Snapshot,
    InternalNode,
    WritesetLeaf,
    ArrayLeaf,
    OverflowLeaf,
    EraArrayBlock,
    BitsetBlock,
    SmIndex,
    SmBitmap,
}

/// The blocks reachable from block 0 of an intact image, with their kinds.
struct Layout {
    blocks: BTreeMap<u64, Kind>,
}

impl Layout {
    fn of(img: &[u8]) -> Layout {
        let mut l = Layout {
            blocks: BTreeMap::new(),
        };
        let sb = Superblock::unpack(block(img, 0));
        l.blocks.insert(0, Kind::Superblock);
        l.view(img, &sb, true);
        if sb.metadata_snap != 0 {
            l.blocks.insert(sb.metadata_snap, Kind::Snapshot);
            l.view(
                img,
                &Superblock::unpack(block(img, sb.metadata_snap)),
                false,
            );
        }
        l.blocks.insert(sb.sm_root.bitmap_root, Kind::SmIndex);
        let index = block(img, sb.sm_root.bitmap_root);
        let nr_bitmaps = sb.sm_root.nr_blocks.div_ceil(16_320) as usize;
        for i in 0..nr_bitmaps {
            l.blocks.insert(le64(index, 16 + 16 * i), Kind::SmBitmap);
        }
        l.tree(img, sb.sm_root.ref_count_root, 4, &mut |_, _| {});
        l
    }

    fn view(&mut self, img: &[u8], sb: &Superblock, live: bool) {
        let mut bitsets = Vec::new();
        self.tree(img, sb.writeset_tree_root, 12, &mut |_, v| {
            bitsets.push(le64(v, 4))
        });
        if live && sb.current_writeset.root != 0 {
            bitsets.push(sb.current_writeset.root);
        }
        for root in bitsets {
            self.array(img, root, Kind::BitsetBlock);
        }
        self.array(img, sb.era_array_root, Kind::EraArrayBlock);
    }

    fn array(&mut self, img: &[u8], root: u64, kind: Kind) {
        let mut ablocks = Vec::new();
        self.tree(img, root, 8, &mut |_, v| ablocks.push(le64(v, 0)));
        for loc in ablocks {
            self.blocks.insert(loc, kind);
        }
    }

    /// Walks the b-tree at `root`, handing each leaf entry to `leaf`.
    fn tree(&mut self, img: &[u8], root: u64, vs: u32, leaf: &mut dyn FnMut(u64, &[u8])) {
        let node = Node::parse(block(img, root), root, vs).expect("intact kernel node");
        if node.is_leaf() {
            let kind = match vs {
                12 => Kind::WritesetLeaf,
                8 => Kind::ArrayLeaf,
                _ => Kind::OverflowLeaf,
            };
            self.blocks.insert(root, kind);
            for i in 0..node.len() {
                leaf(node.key(i), node.value(i));
            }
        } else {
            self.blocks.insert(root, Kind::InternalNode);
            for i in 0..node.len() {
                self.tree(img, node.child(i), vs, leaf);
            }
        }
    }
}

/// The last array block of the era array, and how many values it holds.
fn last_era_array_block(img: &[u8]) -> (u64, u32) {
    let sb = Superblock::unpack(block(img, 0));
    let mut last = None;
    Layout {
        blocks: BTreeMap::new(),
    }
    .tree(img, sb.era_array_root, 8, &mut |_, v| {
        last = Some(le64(v, 0))
    });
    let loc = last.expect("a non-empty era array");
    (loc, le32(block(img, loc), 8))
}

/// An era-array block whose `nr_entries` claims the whole block, re-sealed, with non-zero
/// stale slots: the values past the array's end used to reach era_invalidate, which
/// indexed its bitmap with them and panicked.
#[test]
fn an_era_array_block_claiming_the_whole_block_is_an_error_not_a_panic() {
    let mut tried = 0;
    for name in era_images() {
        let mut img = fixture(&name);
        if img.len() > 8 << 20 {
            continue;
        }
        let (loc, nr_entries) = last_era_array_block(&img);
        if nr_entries == 1018 {
            continue;
        }
        tried += 1;
        let b = block_mut(&mut img, loc);
        for slot in nr_entries as usize..1018 {
            put32(b, 24 + 4 * slot, 1);
        }
        put32(b, 8, 1018);
        reseal(&mut img, loc, BlockKind::ArrayBlock);
        let io = MemIo::from_bytes(img);
        let view = View::open(&io, false).expect("the superblock is intact");
        for since in [1, view.current_era()] {
            let r = written_since(&io, &view, since);
            let e = r.expect_err("a damaged era array is an error, never a list");
            assert!(e.to_string().contains("era array"), "{name}: {e}");
        }
        let p = check(&io, CheckOptions::default());
        assert_eq!(p.worst(), Some(Severity::Fatal), "{name}");
        for logical in [false, true] {
            let opts = DumpOptions {
                logical,
                ..DumpOptions::default()
            };
            assert!(dump(&io, &opts, &mut std::io::sink()).is_err(), "{name}");
        }
    }
    assert!(
        tried >= 12,
        "only {tried} images with a short last era-array block"
    );
}

#[test]
fn layouts_of_the_kernel_images_have_every_kind() {
    let img = fixture("era-snap-held.removed-snap-held.img.gz");
    let l = Layout::of(&img);
    let _ = BLOCK_SIZE;
    for k in [
        Kind::Superblock,
        Kind::Snapshot,
        Kind::WritesetLeaf,
        Kind::ArrayLeaf,
        Kind::OverflowLeaf,
        Kind::EraArrayBlock,
        Kind::BitsetBlock,
        Kind::SmIndex,
        Kind::SmBitmap,
    ] {
        assert!(l.blocks.values().any(|&v| v == k), "{k:?}");
    }
}
