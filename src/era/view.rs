//! What a reader of era metadata may follow: block 0's roots (with the current writeset),
//! or a held snapshot's two roots only.

use super::metadata::{read_live_superblock, read_snapshot_superblock, SNAPSHOT};
use super::superblock::{check_nr_blocks, Superblock};
use super::writeset::{WritesetDisk, WRITESET_VALUE_SIZE};
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::BlockIo;
use crate::pdata::report::Severity;
use crate::pdata::walk::Walker;

/// One writeset to read: an archived one from the writeset tree, or the current one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritesetRef {
    /// The era it records.
    pub era: u32,
    /// Its length and bitset root.
    pub disk: WritesetDisk,
    /// Whether it is the current writeset of block 0.
    pub current: bool,
    /// How messages name it.
    pub name: String,
    /// Whether the pointer to its bitset is to be counted (see [`Walker::count`]).
    pub counting: bool,
}

/// A consistent set of roots to read.
#[derive(Debug, Clone)]
pub struct View {
    /// The superblock whose roots are followed: block 0, or the held snapshot.
    pub sb: Superblock,
    /// Block 0 (the same as `sb` unless this is a snapshot view).
    pub live: Superblock,
    /// Whether this is the held snapshot's view.
    pub snapshot: bool,
}

impl View {
    /// Reads block 0 and, with `snapshot`, the held snapshot it points at. A snapshot
    /// reader expects a live target: block 0 is read again when its checksum fails.
    pub fn open(io: &dyn BlockIo, snapshot: bool) -> Result<View, Error> {
        let live = read_live_superblock(io, snapshot)?;
        let sb = if snapshot {
            read_snapshot_superblock(io, &live)?
        } else {
            live.clone()
        };
        let structure = if snapshot { SNAPSHOT } else { "superblock" };
        check_nr_blocks(&sb, io.nr_blocks()).map_err(|f| Error::structure(structure, f))?;
        Ok(View { sb, live, snapshot })
    }

    /// Block 0's view, from a superblock already read and checked.
    pub fn live(sb: Superblock) -> View {
        View {
            sb: sb.clone(),
            live: sb,
            snapshot: false,
        }
    }

    /// The held snapshot's view, from superblocks already read and checked.
    pub fn snapshot(live: Superblock, snap: Superblock) -> View {
        View {
            sb: snap,
            live,
            snapshot: true,
        }
    }

    /// Origin blocks covered.
    pub fn nr_blocks(&self) -> u64 {
        self.sb.nr_blocks as u64
    }

    /// The current era of the view (for a snapshot, the era that began when it was taken).
    pub fn current_era(&self) -> u32 {
        self.sb.current_era
    }

    /// The bound on block numbers for a walker over this view.
    pub fn limit(&self, io: &dyn BlockIo) -> u64 {
        self.live.sm_root.nr_blocks.min(io.nr_blocks())
    }

    fn prefix(&self) -> &'static str {
        if self.snapshot {
            "metadata snapshot "
        } else {
            ""
        }
    }

    /// The writesets to read, in ascending era: the writeset tree's entries and, for
    /// block 0's view, the current writeset when its root is set. A snapshot's current
    /// writeset is stale and never returned. Problems go to the walker; with `counting`, so
    /// do the references found (the tree's nodes; the bitsets are the caller's to walk).
    pub fn writesets(&self, w: &mut Walker, counting: bool) -> Vec<WritesetRef> {
        let tree = self.writeset_tree_name();
        let mut out = Vec::new();
        w.walk_btree(
            &tree,
            self.sb.writeset_tree_root,
            WRITESET_VALUE_SIZE,
            counting,
            &mut |w, key, value, c| {
                let Ok(era) = u32::try_from(key) else {
                    let f = Fault::Invalid(format!("key {key} is not a 32-bit era"));
                    return w.report(Severity::Error, Error::structure(&tree, f));
                };
                out.push(WritesetRef {
                    era,
                    disk: WritesetDisk::unpack(value),
                    current: false,
                    name: format!("{tree} (era {era})"),
                    counting: c,
                });
            },
        );
        let cw = self.sb.current_writeset;
        if !self.snapshot && cw.root != 0 {
            let era = self.sb.current_era;
            if out.iter().any(|ws| ws.era == era) {
                let f = Fault::Invalid(format!("era {era} is also in the writeset tree"));
                w.report(
                    Severity::Error,
                    Error::structure(format!("current writeset (era {era})"), f),
                );
            }
            out.push(WritesetRef {
                era,
                disk: cw,
                current: true,
                name: format!("current writeset (era {era})"),
                counting,
            });
        }
        out.sort_by_key(|ws| ws.era);
        out
    }

    /// How messages name the writeset tree.
    pub fn writeset_tree_name(&self) -> String {
        format!("{}writeset tree", self.prefix())
    }

    /// How messages name the era array.
    pub fn era_array_name(&self) -> String {
        format!("{}era array", self.prefix())
    }
}
