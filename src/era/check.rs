//! `era_check`: every rule of the era format, including the current writeset, the held
//! snapshot, stray bits, array lengths and the reference count of every block.

use byteorder::{ByteOrder, LittleEndian as LE};

use super::era_array::ERA_VALUE_SIZE;
use super::metadata::{read_live_superblock, read_snapshot_superblock, SNAPSHOT};
use super::superblock::{
    check_data_block_size, check_nr_blocks, Superblock, MAX_NR_BLOCKS, METADATA_BLOCK_SIZE_SECTORS,
};
use super::writeset::{WritesetDisk, WRITESET_VALUE_SIZE};
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
            problems.push(Severity::Fatal, e);
            return problems;
        }
    };
    check_superblock_fields(&mut problems, "superblock", &sb, io.nr_blocks());
    if opts.super_block_only || problems.worst() == Some(Severity::Fatal) {
        return problems;
    }
    if opts.metadata_snap {
        let limit = sb.sm_root.nr_blocks.min(io.nr_blocks());
        let mut w = Walker::new(io, limit);
        w.problems = problems;
        match read_snapshot_superblock(io, &sb) {
            Ok(snap) => check_snapshot(&mut w, &snap, false),
            Err(e) => w.report(Severity::Fatal, e),
        }
        return w.problems;
    }

    let sm = sb.sm_root;
    if sm.nr_blocks > io.nr_blocks() || sm.nr_blocks > MAX_METADATA_BLOCKS || sm.nr_blocks == 0 {
        problems.push(
            Severity::Fatal,
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
    walk_view(&mut w, "", &sb, true, true);
    if sb.metadata_snap != 0 {
        let counting = w.count(sb.metadata_snap, true);
        match read_snapshot_superblock(io, &sb) {
            Ok(snap) => check_snapshot(&mut w, &snap, counting),
            Err(e) => w.report(Severity::Fatal, e),
        }
    }
    let stored = read_metadata_space_map(&mut w, &sm);
    compare_counts(&mut w, &sm, &stored);
    w.problems
}

fn check_snapshot(w: &mut Walker, snap: &Superblock, counting: bool) {
    let mut p = std::mem::take(&mut w.problems);
    check_superblock_fields(&mut p, SNAPSHOT, snap, w.io().nr_blocks());
    w.problems = p;
    if snap.metadata_snap != 0 {
        w.report(
            Severity::NonFatal,
            invalid(SNAPSHOT, "the snapshot itself points at a snapshot".into()),
        );
    }
    walk_view(w, "metadata snapshot ", snap, false, counting);
}

fn check_superblock_fields(p: &mut Problems, structure: &str, sb: &Superblock, dev_blocks: u64) {
    if let Err(f) = check_data_block_size(sb.data_block_size) {
        p.push(Severity::Fatal, Error::structure(structure, f));
    }
    if sb.metadata_block_size != METADATA_BLOCK_SIZE_SECTORS {
        p.push(
            Severity::Warning,
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
        p.push(Severity::Fatal, Error::structure(structure, f));
    }
    if sb.current_writeset.nr_bits as u64 >= MAX_NR_BLOCKS {
        p.push(
            Severity::Fatal,
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
            p.push(Severity::Fatal, invalid(structure, format!("{name} is 0")));
        }
    }
}

/// Walks one view of the metadata: the writeset tree and every writeset in it, the current
/// writeset (only for block 0: a snapshot's copy is stale) and the era array.
fn walk_view(w: &mut Walker, prefix: &str, sb: &Superblock, live: bool, counting: bool) {
    let era = sb.current_era;
    let wt = format!("{prefix}writeset tree");
    let mut keys = Vec::new();
    if sb.writeset_tree_root != 0 {
        w.walk_btree(
            &wt,
            sb.writeset_tree_root,
            WRITESET_VALUE_SIZE,
            counting,
            &mut |w, key, value, c| {
                keys.push(key);
                check_writeset(w, &wt, &format!("{wt} (era {key})"), key, era, value, c);
            },
        );
    }
    for pair in keys.windows(2) {
        if pair[1] != pair[0] + 1 {
            let e = invalid(
                &wt,
                format!("eras {} and {} are not contiguous", pair[0], pair[1]),
            );
            w.report(Severity::Warning, e);
        }
    }
    let cw = sb.current_writeset;
    if live && cw.root != 0 {
        let name = format!("current writeset (era {era})");
        if keys.contains(&(era as u64)) {
            let e = invalid(&name, format!("era {era} is in the writeset tree too"));
            w.report(Severity::Fatal, e);
        }
        w.walk_bitset(
            &name,
            cw.root,
            cw.nr_bits as u64,
            counting,
            &mut |_, _, _| {},
        );
    }
    if sb.era_array_root != 0 {
        check_era_array(w, prefix, sb, counting);
    }
}

fn check_writeset(
    w: &mut Walker,
    tree: &str,
    name: &str,
    key: u64,
    era: u32,
    value: &[u8],
    counting: bool,
) {
    let ws = WritesetDisk::unpack(value);
    if key > u32::MAX as u64 {
        let e = invalid(tree, format!("key {key} is not a 32-bit era"));
        return w.report(Severity::Fatal, e);
    }
    if key > era as u64 {
        let e = invalid(
            tree,
            format!("era {key} is above the current era {era} (wrapped around?)"),
        );
        w.report(Severity::Warning, e);
    }
    if ws.root == 0 {
        return w.report(Severity::Fatal, invalid(name, "bitset root is 0".into()));
    }
    if ws.nr_bits as u64 >= MAX_NR_BLOCKS {
        let e = invalid(name, format!("nr_bits {} is 2^31 or more", ws.nr_bits));
        return w.report(Severity::Fatal, e);
    }
    w.walk_bitset(
        name,
        ws.root,
        ws.nr_bits as u64,
        counting,
        &mut |_, _, _| {},
    );
}

fn check_era_array(w: &mut Walker, prefix: &str, sb: &Superblock, counting: bool) {
    let name = format!("{prefix}era array");
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
        w.report(Severity::NonFatal, e);
    }
}
