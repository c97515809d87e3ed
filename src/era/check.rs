//! `era_check`: every rule of the era format, including the current writeset, the held
//! snapshot, stray bits, array lengths and the reference count of every block.

use super::format::superblock::{
    check_data_block_size, check_nr_blocks, Superblock, MAX_NR_BLOCKS, METADATA_BLOCK_SIZE_SECTORS,
};
use super::metadata::{Metadata, SNAPSHOT};
use super::view::{View, WritesetRef};
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::BlockIo;
use crate::pdata::report::{Problems, Severity};
use crate::pdata::space_map::check::{compare_counts, read_metadata_space_map};
use crate::pdata::space_map::MAX_METADATA_BLOCKS;
use crate::pdata::walk::{Parent, Walker};

/// What to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Check the superblock and stop.
    pub super_block_only: bool,
    /// Check only what the held metadata snapshot reaches (a live device can be checked
    /// this way, opened without `O_EXCL`).
    pub metadata_snap: bool,
}

fn invalid(structure: &str, msg: String) -> Error {
    Error::structure(structure, Fault::Invalid(msg))
}

/// Checks the era metadata on `io` and returns everything found wrong.
pub fn check(io: &dyn BlockIo, opts: CheckOptions) -> Problems {
    let mut problems = Problems::default();
    let md = match Metadata::open(io, opts.metadata_snap) {
        Ok(md) => md,
        Err(e) => {
            problems.push(Severity::Error, e);
            return problems;
        }
    };
    let sb = &md.block0;
    check_superblock_fields(
        &mut |s, e| problems.push(s, e),
        "superblock",
        sb,
        io.nr_blocks(),
    );
    if opts.super_block_only || problems.worst() == Some(Severity::Error) {
        return problems;
    }
    if opts.metadata_snap {
        let mut w = md.walker(io).with_problems(problems);
        let top = w.top();
        check_snapshot(&mut w, &md, top);
        return w.into_problems();
    }

    let sm = sb.sm_root;
    if sm.nr_blocks > io.nr_blocks() || sm.nr_blocks > MAX_METADATA_BLOCKS || sm.nr_blocks == 0 {
        problems.push(
            Severity::Error,
            invalid(
                "metadata space map",
                format!(
                    "covers {} blocks, but the device has {} (at most {MAX_METADATA_BLOCKS} can be mapped)",
                    sm.nr_blocks,
                    io.nr_blocks()
                ),
            ),
        );
    }
    let mut w = md.counting_walker(io).with_problems(problems);
    let top = w.top();
    let block0 = w.follow(top, 0);
    walk_view(&mut w, &md.block0_view(), block0);
    if sb.metadata_snap != 0 {
        check_snapshot(&mut w, &md, block0);
    }
    let stored = read_metadata_space_map(&mut w, &sm);
    compare_counts(&mut w, &sm, &stored);
    w.into_problems()
}

/// Checks the held snapshot, whose location block 0 (reached as `block0`) holds.
fn check_snapshot(w: &mut Walker, md: &Metadata, block0: Parent) {
    let at = w.follow(block0, md.block0.metadata_snap);
    let snap = match md.snapshot_superblock(w.io()) {
        Ok(snap) => snap,
        Err(e) => return w.report(Severity::Error, e),
    };
    let dev_blocks = w.io().nr_blocks();
    check_superblock_fields(&mut |s, e| w.report(s, e), SNAPSHOT, &snap, dev_blocks);
    if snap.metadata_snap != 0 {
        w.report(
            Severity::Warning,
            invalid(SNAPSHOT, "the snapshot itself points at a snapshot".into()),
        );
    }
    walk_view(w, &md.snapshot_view(snap), at);
}

/// Checks the fields of a superblock copy that the kernel does not check on reading it,
/// handing each problem to `report`.
fn check_superblock_fields(
    report: &mut dyn FnMut(Severity, Error),
    structure: &str,
    sb: &Superblock,
    dev_blocks: u64,
) {
    if let Err(f) = check_data_block_size(sb.data_block_size) {
        report(Severity::Error, Error::structure(structure, f));
    }
    if sb.metadata_block_size != METADATA_BLOCK_SIZE_SECTORS {
        report(
            Severity::Note,
            invalid(
                structure,
                format!(
                    "metadata block size {} sectors, expected {METADATA_BLOCK_SIZE_SECTORS}",
                    sb.metadata_block_size
                ),
            ),
        );
    }
    if let Err(f) = check_nr_blocks(sb, dev_blocks) {
        report(Severity::Error, Error::structure(structure, f));
    }
    if sb.current_writeset.nr_bits as u64 >= MAX_NR_BLOCKS {
        report(
            Severity::Error,
            invalid(
                structure,
                format!(
                    "current writeset nr_bits {} is 2^31 or more",
                    sb.current_writeset.nr_bits
                ),
            ),
        );
    }
    for (name, root) in [
        ("writeset tree root", sb.writeset_tree_root),
        ("era array root", sb.era_array_root),
    ] {
        if root == 0 {
            report(Severity::Error, invalid(structure, format!("{name} is 0")));
        }
    }
}

/// Walks one view of the metadata: the writeset tree and every writeset in it, the current
/// writeset (only for block 0: a snapshot's copy is stale) and the era array. `at` is the
/// superblock holding the view's roots, as the walker reached it.
fn walk_view(w: &mut Walker, view: &View, at: Parent) {
    let sb = &view.sb;
    let era = sb.current_era;
    let writesets = if sb.writeset_tree_root != 0 {
        view.writesets(w, at)
    } else {
        Vec::new()
    };
    let archived: Vec<u32> = writesets
        .iter()
        .filter(|ws| !ws.current)
        .map(|ws| ws.era)
        .collect();
    for pair in archived.windows(2) {
        if pair[1] != pair[0] + 1 {
            let e = invalid(
                &view.writeset_tree_name(),
                format!("eras {} and {} are not contiguous", pair[0], pair[1]),
            );
            w.report(Severity::Note, e);
        }
    }
    for ws in &writesets {
        check_writeset(w, view, ws, era);
    }
    if sb.era_array_root != 0 {
        check_era_array(w, view, at);
    }
}

fn check_writeset(w: &mut Walker, view: &View, ws: &WritesetRef, era: u32) {
    // Like an era-array value above the current era: era_invalidate can no longer order
    // the eras and lists every block, and era_repair drops the writeset.
    if ws.era > era {
        let e = invalid(
            &view.writeset_tree_name(),
            format!(
                "era {} is above the current era {era} (wrapped around?)",
                ws.era
            ),
        );
        w.report(Severity::Warning, e);
    }
    if ws.disk.root == 0 {
        return w.report(
            Severity::Error,
            invalid(&ws.name, "bitset root is 0".into()),
        );
    }
    if ws.disk.nr_bits as u64 >= MAX_NR_BLOCKS {
        let e = invalid(
            &ws.name,
            format!("nr_bits {} is 2^31 or more", ws.disk.nr_bits),
        );
        return w.report(Severity::Error, e);
    }
    w.walk_bitset(
        &ws.name,
        ws.disk.root,
        ws.disk.nr_bits as u64,
        ws.parent,
        &mut |_, _, _| {},
    );
}

fn check_era_array(w: &mut Walker, view: &View, at: Parent) {
    let sb = &view.sb;
    let name = view.era_array_name();
    let era = sb.current_era;
    let mut above = 0u64;
    let mut first_above = None;
    w.walk_array(
        &name,
        sb.era_array_root,
        sb.nr_blocks as u64,
        at,
        &mut |_, first, eras: &[u32]| {
            // Counted without a branch or an overflow check (a block holds about a thousand
            // values), so that the compiler compares several at once: this loop was a sixth
            // of a check's time. Eras above are rare; only then is the first looked for.
            let n = eras
                .iter()
                .fold(0u32, |n, &v| n.wrapping_add(u32::from(v > era)));
            if n > 0 {
                above += u64::from(n);
                if first_above.is_none() {
                    first_above = eras
                        .iter()
                        .position(|&v| v > era)
                        .map(|i| (first + i as u64, eras[i]));
                }
            }
        },
    );
    if let Some((block, v)) = first_above {
        let e = invalid(
            &name,
            format!(
                "{above} entries hold an era above the current era {era} (wrapped around?); \
                 first: invalid era value at data block {block}: {v}"
            ),
        );
        w.report(Severity::Warning, e);
    }
}
