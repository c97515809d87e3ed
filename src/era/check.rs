//! `era_check`: every rule of the era format, including the current writeset, the held
//! snapshot, stray bits, array lengths and the reference count of every block.

use byteorder::{ByteOrder, LittleEndian as LE};

use super::era_array::ERA_VALUE_SIZE;
use super::metadata::{read_live_superblock, read_snapshot_superblock, SNAPSHOT};
use super::superblock::{
    check_data_block_size, check_nr_blocks, Superblock, MAX_NR_BLOCKS, METADATA_BLOCK_SIZE_SECTORS,
};
use super::view::{View, WritesetRef};
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::BlockIo;
use crate::pdata::report::{Problems, Severity};
use crate::pdata::space_map::check::{compare_counts, read_metadata_space_map};
use crate::pdata::space_map::MAX_METADATA_BLOCKS;
use crate::pdata::walk::Walker;

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
    let sb = match read_live_superblock(io, opts.metadata_snap) {
        Ok(sb) => sb,
        Err(e) => {
            problems.push(Severity::Error, e);
            return problems;
        }
    };
    check_superblock_fields(&mut problems, "superblock", &sb, io.nr_blocks());
    if opts.super_block_only || problems.worst() == Some(Severity::Error) {
        return problems;
    }
    if opts.metadata_snap {
        let mut w = Walker::new(io, View::live(sb.clone()).limit(io));
        w.problems = problems;
        match read_snapshot_superblock(io, &sb) {
            Ok(snap) => check_snapshot(&mut w, &sb, snap, false),
            Err(e) => w.report(Severity::Error, e),
        }
        return w.problems;
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
    let limit = sm.nr_blocks.min(io.nr_blocks()).min(MAX_METADATA_BLOCKS);
    let mut w = Walker::counting(io, limit);
    w.problems = problems;
    w.count(0, true);
    walk_view(&mut w, &View::live(sb.clone()), true);
    if sb.metadata_snap != 0 {
        let counting = w.count(sb.metadata_snap, true);
        match read_snapshot_superblock(io, &sb) {
            Ok(snap) => check_snapshot(&mut w, &sb, snap, counting),
            Err(e) => w.report(Severity::Error, e),
        }
    }
    let stored = read_metadata_space_map(&mut w, &sm);
    compare_counts(&mut w, &sm, &stored);
    w.problems
}

fn check_snapshot(w: &mut Walker, live: &Superblock, snap: Superblock, counting: bool) {
    let mut p = std::mem::take(&mut w.problems);
    check_superblock_fields(&mut p, SNAPSHOT, &snap, w.io().nr_blocks());
    w.problems = p;
    if snap.metadata_snap != 0 {
        w.report(
            Severity::Warning,
            invalid(SNAPSHOT, "the snapshot itself points at a snapshot".into()),
        );
    }
    walk_view(w, &View::snapshot(live.clone(), snap), counting);
}

fn check_superblock_fields(p: &mut Problems, structure: &str, sb: &Superblock, dev_blocks: u64) {
    if let Err(f) = check_data_block_size(sb.data_block_size) {
        p.push(Severity::Error, Error::structure(structure, f));
    }
    if sb.metadata_block_size != METADATA_BLOCK_SIZE_SECTORS {
        p.push(
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
        p.push(Severity::Error, Error::structure(structure, f));
    }
    if sb.current_writeset.nr_bits as u64 >= MAX_NR_BLOCKS {
        p.push(
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
            p.push(Severity::Error, invalid(structure, format!("{name} is 0")));
        }
    }
}

/// Walks one view of the metadata: the writeset tree and every writeset in it, the current
/// writeset (only for block 0: a snapshot's copy is stale) and the era array.
fn walk_view(w: &mut Walker, view: &View, counting: bool) {
    let sb = &view.sb;
    let era = sb.current_era;
    let writesets = if sb.writeset_tree_root != 0 {
        view.writesets(w, counting)
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
        check_era_array(w, view, counting);
    }
}

fn check_writeset(w: &mut Walker, view: &View, ws: &WritesetRef, era: u32) {
    if ws.era > era {
        let e = invalid(
            &view.writeset_tree_name(),
            format!(
                "era {} is above the current era {era} (wrapped around?)",
                ws.era
            ),
        );
        w.report(Severity::Note, e);
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
        ws.counting,
        &mut |_, _, _| {},
    );
}

fn check_era_array(w: &mut Walker, view: &View, counting: bool) {
    let sb = &view.sb;
    let name = view.era_array_name();
    let era = sb.current_era;
    let mut above = 0u64;
    let mut first_above = None;
    w.walk_array(
        &name,
        sb.era_array_root,
        ERA_VALUE_SIZE,
        sb.nr_blocks as u64,
        counting,
        &mut |_, first, bytes| {
            for (i, v) in bytes.chunks_exact(4).map(LE::read_u32).enumerate() {
                if v > era {
                    above += 1;
                    first_above.get_or_insert((first + i as u64, v));
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
