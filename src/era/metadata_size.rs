//! How large an era target's metadata device must be (`era_metadata_size`).
//!
//! Every structure the kernel keeps has a size that follows from the origin's block count
//! `N` (era-format.md §2, §4), counted in 4096-byte metadata blocks:
//!
//! * superblock: 1;
//! * era array: `A = ⌈N / 1018⌉` array blocks, plus the b-tree over them;
//! * one writeset (the current one, and each archived one waiting to be digested):
//!   `S = ⌈⌈N / 64⌉ / 509⌉` bitset array blocks, plus the b-tree over them;
//! * writeset tree: b-tree nodes for `W` archived writesets (201 per leaf);
//! * space map: its index block, the root of its reference-count tree, and one bitmap per
//!   16320 metadata blocks.
//!
//! A b-tree of `k` entries with `c` per leaf has `⌈k / c⌉` leaves (the kernel packs
//! sequential inserts full), then `⌈·/252⌉` nodes per level above until one root. That sum
//! is what the kernel's status line reports in use after a commit with `W` archived
//! writesets ([`committed_blocks`]; the tests check it against every kernel fixture).
//!
//! Blocks replaced within a transaction are free again only after the commit, so the
//! device also needs room for what one transaction copies:
//!
//! * a second era array: digestion rewrites era-array blocks, and the kernel commits only
//!   on a message or a write, so a quiet target can copy every era-array block before its
//!   next commit; a held metadata snapshot keeps the old copies as long as it is held;
//! * the snapshot's own superblock;
//! * the paths an insert or a removal copies in the writeset tree, and a write in the
//!   current writeset;
//! * every space-map bitmap and the index.
//!
//! The total is the smallest `T` with `T ≥ committed(T) + headroom(T)` (the bitmaps depend
//! on `T`).

use super::format::superblock::MAX_NR_BLOCKS;
use crate::pdata::space_map::{ENTRIES_PER_BITMAP, MAX_METADATA_BLOCKS};

/// Era-array entries per array block.
pub const ERA_ENTRIES_PER_BLOCK: u64 = 1018;
/// Bitset words (64 origin blocks each) per array block.
pub const BITSET_WORDS_PER_BLOCK: u64 = 509;
/// Entries per b-tree node whose values are block numbers (array b-trees' leaves, every
/// internal node).
pub const BLOCK_REFS_PER_NODE: u64 = 252;
/// Writesets per writeset-tree leaf.
pub const WRITESETS_PER_LEAF: u64 = 201;
/// Metadata block size in bytes.
pub const METADATA_BLOCK_BYTES: u64 = 4096;

/// Blocks (nodes) and depth of a b-tree of `entries` entries, `per_leaf` per leaf.
fn btree(entries: u64, per_leaf: u64) -> (u64, u64) {
    let mut level = entries.div_ceil(per_leaf).max(1);
    let (mut nodes, mut depth) = (level, 1);
    while level > 1 {
        level = level.div_ceil(BLOCK_REFS_PER_NODE);
        nodes += level;
        depth += 1;
    }
    (nodes, depth)
}

/// The parts of one sizing, in metadata blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// Origin blocks.
    pub nr_blocks: u64,
    /// Archived writesets that may wait to be digested at once.
    pub writesets: u64,
    /// The era array with its b-tree.
    pub era_array: u64,
    /// One writeset with its b-tree.
    pub writeset: u64,
    /// The writeset tree.
    pub writeset_tree: u64,
    /// The space map (index, reference-count tree root, bitmaps) of a device of `total`
    /// blocks.
    pub space_map: u64,
    /// In use after a commit with `writesets` archived writesets and the current one.
    pub committed: u64,
    /// Room for one transaction's copies and the snapshot.
    pub headroom: u64,
    /// The device size: `committed + headroom`.
    pub total: u64,
}

impl Sizing {
    /// The size in `units`, rounded up.
    pub fn in_units(&self, units: SizeUnits) -> u64 {
        (self.total * METADATA_BLOCK_BYTES).div_ceil(units.bytes())
    }
}

/// Units of the answer (also the values of era_metadata_size's `--units`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SizeUnits {
    /// Bytes
    Bytes,
    /// 512-byte sectors
    Sectors,
    /// 4096-byte metadata blocks
    Blocks,
    /// KiB (1024 bytes)
    Kib,
    /// MiB
    Mib,
    /// GiB
    Gib,
}

impl SizeUnits {
    /// Bytes in one unit.
    pub fn bytes(self) -> u64 {
        match self {
            SizeUnits::Bytes => 1,
            SizeUnits::Sectors => 512,
            SizeUnits::Blocks => METADATA_BLOCK_BYTES,
            SizeUnits::Kib => 1 << 10,
            SizeUnits::Mib => 1 << 20,
            SizeUnits::Gib => 1 << 30,
        }
    }

    /// How the answer names the unit.
    pub fn name(self) -> &'static str {
        match self {
            SizeUnits::Bytes => "bytes",
            SizeUnits::Sectors => "sectors",
            SizeUnits::Blocks => "metadata blocks",
            SizeUnits::Kib => "KiB",
            SizeUnits::Mib => "MiB",
            SizeUnits::Gib => "GiB",
        }
    }
}

/// Why no size can be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// The kernel refuses origins of this many blocks.
    #[error("{0} origin blocks: an era target has from 1 to {max} blocks", max = MAX_NR_BLOCKS - 1)]
    NrBlocks(u64),
    /// A block size the kernel refuses.
    #[error("block size {0}: it must be a positive multiple of 8 sectors")]
    BlockSize(u64),
    /// More than the kernel's metadata space map can address.
    #[error(
        "{0} metadata blocks are needed, more than the {MAX_METADATA_BLOCKS} ({gib:.1} GiB) the \
         kernel's metadata space map can address: use larger blocks or fewer writesets",
        gib = (MAX_METADATA_BLOCKS * METADATA_BLOCK_BYTES) as f64 / (1u64 << 30) as f64
    )]
    TooLarge(u64),
    /// An origin size that cannot be read.
    #[error("cannot read the origin size '{0}'")]
    OriginSize(String),
}

/// Origin blocks of an origin of `bytes` bytes with blocks of `block_size` sectors (the
/// last block may be partial).
pub fn nr_blocks(bytes: u64, block_size: u64) -> Result<u64, SizeError> {
    if block_size == 0 || block_size % 8 != 0 {
        return Err(SizeError::BlockSize(block_size));
    }
    Ok(bytes.div_ceil(512).div_ceil(block_size))
}

/// Parses a size: a number of bytes, or with a suffix `s` (sectors), `k`, `m`, `g`, `t`,
/// `p` (powers of 1024; `KiB`, `kb`... accepted).
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let bad = || SizeError::OriginSize(s.to_string());
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().map_err(|_| bad())?;
    let suffix = t[digits..].to_ascii_lowercase();
    let unit = suffix
        .strip_suffix("ib")
        .or_else(|| suffix.strip_suffix('b'))
        .unwrap_or(&suffix);
    let shift = match unit {
        "" => 0,
        "s" if suffix == "s" => return n.checked_mul(512).ok_or_else(bad),
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// Metadata blocks in use after a commit, with `writesets` archived writesets and the
/// current one, on a device of `total` blocks: what the kernel's status line shows then.
pub fn committed_blocks(nr_blocks: u64, writesets: u64, total: u64) -> u64 {
    let p = Parts::new(nr_blocks, writesets);
    p.without_space_map() + space_map_blocks(total)
}

fn space_map_blocks(total: u64) -> u64 {
    2 + total.div_ceil(ENTRIES_PER_BITMAP)
}

struct Parts {
    era_array: u64,
    writeset: u64,
    writeset_depth: u64,
    writeset_tree: u64,
    writeset_tree_depth: u64,
    writesets: u64,
}

impl Parts {
    fn new(nr_blocks: u64, writesets: u64) -> Parts {
        let ea = nr_blocks.div_ceil(ERA_ENTRIES_PER_BLOCK);
        let (ea_nodes, _) = btree(ea, BLOCK_REFS_PER_NODE);
        let ws = nr_blocks.div_ceil(64).div_ceil(BITSET_WORDS_PER_BLOCK);
        let (ws_nodes, ws_depth) = btree(ws, BLOCK_REFS_PER_NODE);
        let (wt_nodes, wt_depth) = btree(writesets, WRITESETS_PER_LEAF);
        Parts {
            era_array: ea + ea_nodes,
            writeset: ws + ws_nodes,
            writeset_depth: ws_depth,
            writeset_tree: wt_nodes,
            writeset_tree_depth: wt_depth,
            writesets,
        }
    }

    fn without_space_map(&self) -> u64 {
        1 + self.era_array + (self.writesets + 1) * self.writeset + self.writeset_tree
    }

    /// What one transaction may copy besides the space map, plus the snapshot superblock.
    fn headroom_without_space_map(&self) -> u64 {
        // A second era array, the snapshot's superblock, a writeset-tree path (one node
        // more: an insert that splits the root adds a level), a bitset block and its path.
        self.era_array + 1 + (self.writeset_tree_depth + 1) + (1 + self.writeset_depth)
    }
}

/// The metadata device for an origin of `nr_blocks` blocks and up to `writesets` archived
/// writesets waiting to be digested.
pub fn size(nr_blocks: u64, writesets: u64) -> Result<Sizing, SizeError> {
    if nr_blocks == 0 || nr_blocks >= MAX_NR_BLOCKS {
        return Err(SizeError::NrBlocks(nr_blocks));
    }
    let p = Parts::new(nr_blocks, writesets);
    let fixed = p.without_space_map() + p.headroom_without_space_map();
    // The space map and its copies: index, reference-count tree root, each bitmap twice.
    let mut total = fixed;
    loop {
        let bitmaps = total.div_ceil(ENTRIES_PER_BITMAP);
        let need = fixed + 2 + 2 * bitmaps + 1;
        if need <= total {
            break;
        }
        total = need;
        if total > MAX_METADATA_BLOCKS {
            return Err(SizeError::TooLarge(total));
        }
    }
    let committed = p.without_space_map() + space_map_blocks(total);
    Ok(Sizing {
        nr_blocks,
        writesets,
        era_array: p.era_array,
        writeset: p.writeset,
        writeset_tree: p.writeset_tree,
        space_map: space_map_blocks(total),
        committed,
        headroom: total - committed,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btrees_pack_full_leaves_and_stack_levels() {
        assert_eq!(btree(0, 252), (1, 1));
        assert_eq!(btree(252, 252), (1, 1));
        assert_eq!(btree(253, 252), (3, 2));
        // era-large's era array: 2061 array blocks under 9 leaves and a root.
        assert_eq!(btree(2061, 252), (10, 2));
        assert_eq!(btree(252 * 252 + 1, 252), (253 + 2 + 1, 3));
        assert_eq!(btree(402, 201), (3, 2));
    }

    #[test]
    fn one_writeset_and_the_era_array_as_the_format_describes() {
        // era-format.md §11: 1 TiB of 64 KiB blocks.
        let s = size(16_777_216, 0).unwrap();
        assert_eq!(s.era_array, 16_481 + 66 + 1);
        assert_eq!(s.writeset, 516 + 3 + 1);
        // 2^30 blocks: an era array of 4 GiB, twice, fits the 15.9 GiB the space map can
        // address; at 2^31 - 1 blocks its second copy does not.
        assert!(size(1 << 30, 4).is_ok());
        assert!(matches!(
            size(MAX_NR_BLOCKS - 1, 0),
            Err(SizeError::TooLarge(_))
        ));
    }

    #[test]
    fn the_total_holds_the_committed_state_and_one_transaction() {
        for (n, w) in [
            (1, 0),
            (1024, 1),
            (65_536, 1),
            (2_097_152, 300),
            (1 << 30, 3),
        ] {
            let s = size(n, w).unwrap();
            assert_eq!(s.total, s.committed + s.headroom);
            assert!(s.headroom > s.era_array, "{n} {w}");
            // The committed state counted on a device of exactly that size.
            assert_eq!(s.committed, committed_blocks(n, w, s.total));
        }
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert_eq!(size(0, 1), Err(SizeError::NrBlocks(0)));
        assert_eq!(
            size(MAX_NR_BLOCKS, 1),
            Err(SizeError::NrBlocks(MAX_NR_BLOCKS))
        );
        assert_eq!(nr_blocks(1 << 30, 12), Err(SizeError::BlockSize(12)));
        assert_eq!(nr_blocks(1 << 30, 0), Err(SizeError::BlockSize(0)));
        // 24010 sectors of 24-sector blocks: 1000 whole and one partial.
        assert_eq!(nr_blocks(24010 * 512, 24), Ok(1001));
    }

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("8s"), Ok(4096));
        assert_eq!(parse_size("8G"), Ok(8 << 30));
        assert_eq!(parse_size("8GiB"), Ok(8 << 30));
        assert_eq!(parse_size("3mb"), Ok(3 << 20));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        for bad in [
            "",
            "G",
            "1x",
            "1sb",
            "-1",
            "1.5G",
            "99999999999999999999",
            "16384P",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn units_round_up() {
        let s = size(1024, 1).unwrap();
        assert_eq!(s.in_units(SizeUnits::Blocks), s.total);
        assert_eq!(s.in_units(SizeUnits::Bytes), s.total * 4096);
        assert_eq!(s.in_units(SizeUnits::Sectors), s.total * 8);
        assert_eq!(
            s.in_units(SizeUnits::Mib),
            (s.total * 4096).div_ceil(1 << 20)
        );
    }
}
