//! Reading the metadata space map for a check, and comparing its counts with the references
//! a walk of the metadata found.

use std::collections::BTreeMap;

use super::bitmap::{get_code, CODE_OVERFLOW};
use super::index::{IndexBlock, IndexEntry};
use super::root::SmRoot;
use super::{ENTRIES_PER_BITMAP, MAX_INDEX_ENTRIES};
use crate::cast;
use crate::pdata::checksum::BlockKind;
use crate::pdata::error::{Error, Fault};
use crate::pdata::refs::RefCounts;
use crate::pdata::report::Severity;
use crate::pdata::walk::Walker;

const STRUCTURE: &str = "metadata space map";
const OVERFLOW: &str = "metadata space map overflow tree";
/// Mismatching blocks named one by one before the rest are only counted.
const MAX_NAMED_MISMATCHES: usize = 20;

/// The counts a space map stores, as read from disk.
pub struct StoredCounts {
    codes: Vec<u8>,
    overflow: BTreeMap<u64, u32>,
    intact: bool,
}

impl StoredCounts {
    /// The stored count of `loc`, or `None` when a code 3 has no overflow entry.
    fn count(&self, loc: u64) -> Option<u32> {
        match self.codes[cast::index(loc)] {
            CODE_OVERFLOW => self.overflow.get(&loc).copied(),
            c => Some(c as u32),
        }
    }
}

fn invalid(msg: String) -> Fault {
    Fault::Invalid(msg)
}

/// Reports a non-fatal problem of a space-map block: wrong free counts and the like make
/// the kernel's accounting wrong but lose nothing.
fn non_fatal(w: &mut Walker, kind: BlockKind, loc: u64, msg: String) {
    w.report(
        Severity::Warning,
        Error::block(STRUCTURE, kind, loc, invalid(msg)),
    );
}

/// Reads and checks the metadata space map at `root`, counting its own blocks as references
/// (the index block, each bitmap, each overflow-tree node). The walker's limit must already
/// be `root.nr_blocks` bounded by the device.
pub fn read_metadata_space_map(w: &mut Walker, root: &SmRoot) -> StoredCounts {
    let nr_blocks = w.limit();
    let mut stored = StoredCounts {
        codes: vec![0; cast::index(nr_blocks)],
        overflow: BTreeMap::new(),
        intact: true,
    };
    let top = w.top();
    w.follow(top, root.bitmap_root);
    let Some(index) = w.read(STRUCTURE, BlockKind::SM_INDEX, root.bitmap_root) else {
        stored.intact = false;
        return stored;
    };
    let index = IndexBlock::unpack(&index);
    let used = cast::index(nr_blocks.div_ceil(ENTRIES_PER_BITMAP));
    for (k, e) in index.entries.iter().enumerate() {
        if k >= used {
            if e.blocknr != 0 {
                let msg = format!("index entry {k} is set but the map needs only {used}");
                non_fatal(w, BlockKind::SM_INDEX, root.bitmap_root, msg);
            }
            continue;
        }
        w.follow(top, e.blocknr);
        let Some(bitmap) = w.read(STRUCTURE, BlockKind::SM_BITMAP, e.blocknr) else {
            stored.intact = false;
            continue;
        };
        check_bitmap(w, &mut stored, root.bitmap_root, k, e, &bitmap);
    }
    debug_assert!(used <= MAX_INDEX_ENTRIES);
    let overflow = &mut stored.overflow;
    let tree_ok = w.walk_btree(
        OVERFLOW,
        root.ref_count_root,
        top,
        &mut |_, key, count: u32, _| {
            overflow.insert(key, count);
        },
    );
    stored.intact &= tree_ok;
    stored
}

/// Reads the counts of bitmap `bitmap`, described by entry `k` of the index block at
/// `index_loc`, into `stored`, and checks the entry's free count and search hint.
fn check_bitmap(
    w: &mut Walker,
    stored: &mut StoredCounts,
    index_loc: u64,
    k: usize,
    e: &IndexEntry,
    bitmap: &[u8],
) {
    let nr_blocks = w.limit();
    let base = k as u64 * ENTRIES_PER_BITMAP;
    let mut free = 0u32;
    let mut free_in_map = 0u32;
    let mut first_free = None;
    let mut past_end = 0u32;
    for j in 0..ENTRIES_PER_BITMAP {
        let code = get_code(bitmap, j);
        if code == 0 {
            free += 1;
            free_in_map += u32::from(base + j < nr_blocks);
            first_free.get_or_insert(j);
        } else if base + j < nr_blocks {
            stored.codes[cast::index(base + j)] = code;
        } else {
            past_end += 1;
        }
    }
    if past_end > 0 {
        let msg =
            format!("{past_end} entries past the end of the map ({nr_blocks} blocks) are set");
        non_fatal(w, BlockKind::SM_BITMAP, e.blocknr, msg);
    }
    if free != e.nr_free {
        let msg = format!(
            "index entry {k} says {} free, the bitmap has {free}",
            e.nr_free
        );
        if e.nr_free == free_in_map {
            // thin-provisioning-tools 0.9 leaves out the entries past the end of the
            // map, which the kernel counts as free; nothing can be allocated there
            // either way.
            let f = invalid(format!("{msg} (not counting the entries past the end)"));
            let err = Error::block(STRUCTURE, BlockKind::SM_INDEX, index_loc, f);
            w.report(Severity::Note, err);
        } else {
            non_fatal(w, BlockKind::SM_INDEX, index_loc, msg);
        }
    }
    if let Some(ff) = first_free.filter(|&ff| e.none_free_before as u64 > ff) {
        let msg = format!(
            "index entry {k}: none_free_before {} but entry {ff} is free",
            e.none_free_before
        );
        non_fatal(w, BlockKind::SM_INDEX, index_loc, msg);
    }
}

/// How the references a walk counted differ from the counts a space map stores.
struct Mismatches {
    /// The first leaked blocks (stored count, no reference).
    leaks: Vec<u64>,
    /// All leaked blocks.
    nr_leaks: u64,
    /// Blocks with a stored count.
    allocated: u64,
    /// Every other difference, in words, for the first blocks.
    errors: Vec<String>,
    /// Blocks with another difference, past the first.
    unnamed: u64,
}

fn mismatches(refs: &RefCounts, stored: &StoredCounts) -> Mismatches {
    let mut leaks = Vec::new();
    let mut nr_leaks = 0u64;
    let mut named = 0usize;
    let mut unnamed = 0u64;
    let mut allocated = 0u64;
    let mut errors = Vec::new();
    for loc in 0..refs.len() {
        let expected = refs.get(loc);
        let Some(on_disk) = stored.count(loc) else {
            errors.push(format!(
                "block {loc}: count 3 or more in the bitmap but no overflow entry"
            ));
            continue;
        };
        if on_disk > 0 {
            allocated += 1;
        }
        if on_disk == expected {
            continue;
        }
        if expected == 0 {
            nr_leaks += 1;
            if leaks.len() < MAX_NAMED_MISMATCHES {
                leaks.push(loc);
            }
        } else if stored.intact {
            if named < MAX_NAMED_MISMATCHES {
                named += 1;
                let kind = if on_disk < expected {
                    "under-counted"
                } else {
                    "over-counted"
                };
                errors.push(format!(
                    "block {loc} {kind}: {expected} references, but the space map holds {on_disk}"
                ));
            } else {
                unnamed += 1;
            }
        }
    }
    Mismatches {
        leaks,
        nr_leaks,
        allocated,
        errors,
        unnamed,
    }
}

/// Compares the counts a walk found with the stored ones and reports every difference:
/// a leak (stored > 0, no reference) is non-fatal; any other difference is fatal, because
/// an under-count lets the kernel reuse a block still in use. Also checks the overflow tree
/// against the bitmaps and `nr_allocated`.
pub fn compare_counts(w: &mut Walker, root: &SmRoot, stored: &StoredCounts) {
    let Some(refs) = w.refs() else { return };
    let Mismatches {
        leaks,
        nr_leaks,
        allocated,
        mut errors,
        unnamed,
    } = mismatches(refs, stored);
    for (&loc, &count) in &stored.overflow {
        let code = stored.codes.get(cast::index(loc)).copied();
        if code != Some(CODE_OVERFLOW) {
            errors.push(format!(
                "overflow entry for block {loc} whose bitmap count is not 3 or more"
            ));
        } else if count <= 2 {
            errors.push(format!(
                "overflow entry for block {loc} holds count {count}"
            ));
        }
    }
    if unnamed > 0 {
        errors.push(format!("{unnamed} more blocks with wrong reference counts"));
    }
    for e in errors {
        w.report(
            Severity::Error,
            Error::structure(STRUCTURE, Fault::Invalid(e)),
        );
    }
    if nr_leaks > 0 {
        let list: Vec<String> = leaks.iter().map(u64::to_string).collect();
        let more = if nr_leaks > leaks.len() as u64 {
            ", …"
        } else {
            ""
        };
        let f = invalid(format!(
            "{nr_leaks} metadata blocks have leaked (blocks {}{more})",
            list.join(", ")
        ));
        w.report(Severity::Warning, Error::structure(STRUCTURE, f));
    }
    if stored.intact && allocated != root.nr_allocated {
        let f = invalid(format!(
            "nr_allocated is {}, but {allocated} blocks have a count",
            root.nr_allocated
        ));
        w.report(Severity::Warning, Error::structure(STRUCTURE, f));
    }
}
