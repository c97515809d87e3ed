//! What a reader of era metadata may follow: block 0's roots (with the current writeset),
//! or a held snapshot's two roots only.

use super::format::superblock::check_nr_blocks;
use super::format::superblock::Superblock;
use super::format::writeset::WritesetDisk;
use super::format::BLOCK_KINDS;
use super::metadata::{Metadata, SNAPSHOT};
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::BlockIo;
use crate::pdata::report::Severity;
use crate::pdata::walk::{Parent, Walker};

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
    /// The block holding the pointer to its bitset (a writeset-tree leaf, or the
    /// superblock), to hand back to the walker that follows it.
    pub parent: Parent,
}

/// A consistent set of roots to read.
#[derive(Debug, Clone)]
pub struct View {
    /// The superblock whose roots are followed: block 0, or the held snapshot.
    pub sb: Superblock,
    /// Block 0 (the same as `sb` unless this is a snapshot view).
    pub block0: Superblock,
    /// Whether this is the held snapshot's view.
    pub snapshot: bool,
    limit: u64,
}

impl View {
    /// Reads block 0 and, with `snapshot`, the held snapshot it points at (see
    /// [`Metadata::view`]).
    pub fn open(io: &dyn BlockIo, snapshot: bool) -> Result<View, Error> {
        // A held snapshot is read while its target runs: the target may be rewriting block 0.
        let target_may_write = snapshot;
        Metadata::open(io, target_may_write)?.view(io, snapshot)
    }

    /// A view of `sb`'s roots, with `block0` and the bound on block numbers of the
    /// metadata it belongs to (see [`Metadata`]).
    fn new(sb: Superblock, block0: Superblock, snapshot: bool, limit: u64) -> View {
        View {
            sb,
            block0,
            snapshot,
            limit,
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

    /// The bound on block numbers for a walker over this view (see
    /// [`super::metadata::block_limit`]).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// A walker over this view: bounded by [`View::limit`], naming a block of any era kind
    /// found where another was expected.
    pub fn walker<'a>(&self, io: &'a dyn BlockIo) -> Walker<'a> {
        Walker::new(io, self.limit).recognising(&BLOCK_KINDS)
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
    /// writeset is stale and never returned. Problems go to the walker, and so do the
    /// references found when it counts them (the tree's nodes; the bitsets are the
    /// caller's to walk). `sb` is the superblock holding the roots, as the walker reached it.
    pub fn writesets(&self, w: &mut Walker, sb: Parent) -> Vec<WritesetRef> {
        let tree = self.writeset_tree_name();
        let mut out = Vec::new();
        w.walk_btree(
            &tree,
            self.sb.writeset_tree_root,
            sb,
            &mut |w, key, disk: WritesetDisk, leaf| {
                let Ok(era) = u32::try_from(key) else {
                    let f = Fault::Invalid(format!("key {key} is not a 32-bit era"));
                    return w.report(Severity::Error, Error::structure(&tree, f));
                };
                out.push(WritesetRef {
                    era,
                    disk,
                    current: false,
                    name: format!("{tree} (era {era})"),
                    parent: leaf,
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
                parent: sb,
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

/// The views of opened metadata.
impl Metadata {
    /// Block 0's view, as it is (a checker reports its fields itself).
    pub fn block0_view(&self) -> View {
        View::new(self.block0.clone(), self.block0.clone(), false, self.limit)
    }

    /// The view of the held snapshot `snap` (as [`Metadata::snapshot_superblock`] read it).
    pub fn snapshot_view(&self, snap: Superblock) -> View {
        View::new(snap, self.block0.clone(), true, self.limit)
    }

    /// The view a reader follows: block 0's, or with `snapshot` the held snapshot's, after
    /// checking that its length is one readers can hold in memory.
    pub fn view(&self, io: &dyn BlockIo, snapshot: bool) -> Result<View, Error> {
        let (view, structure) = match snapshot {
            true => (self.snapshot_view(self.snapshot_superblock(io)?), SNAPSHOT),
            false => (self.block0_view(), "superblock"),
        };
        check_nr_blocks(&view.sb, io.nr_blocks()).map_err(|f| Error::structure(structure, f))?;
        Ok(view)
    }
}
