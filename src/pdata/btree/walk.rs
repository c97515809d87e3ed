//! An ordered walk over a b-tree that checks every rule a node must obey in its tree: key
//! ranges inherited from the parent, uniform leaf depth, no node reached twice, bounded
//! depth, block numbers in range.

use std::collections::HashSet;

use super::node::{calc_max_entries, Node};
use crate::pdata::checksum::BlockKind;
use crate::pdata::error::{Error, Fault};
use crate::pdata::report::Severity;
use crate::pdata::walk::Walker;

/// Deeper than any tree that fits in 2^64 blocks with the kernel's fan-out: a deeper path
/// can only come from corruption.
const MAX_DEPTH: usize = 32;

/// Called for each leaf entry in key order: `(walker, key, value bytes, counting)`, where
/// `counting` says whether pointers held in the value are to be counted.
pub type LeafVisitor<'v, 'w> = dyn FnMut(&mut Walker<'w>, u64, &[u8], bool) + 'v;

struct Tree<'s, 'v, 'w> {
    structure: &'s str,
    leaf_value_size: u32,
    seen: HashSet<u64>,
    leaf_depth: Option<usize>,
    intact: bool,
    visit: &'v mut LeafVisitor<'v, 'w>,
}

impl<'w> Walker<'w> {
    /// Walks the tree at `root` whose leaves hold `leaf_value_size`-byte values, calling
    /// `visit` for each leaf entry in key order. `counting` says whether the pointer to the
    /// root is to be counted. Damaged subtrees are reported and skipped; the result says
    /// whether the whole tree was read.
    pub fn walk_btree<'v>(
        &mut self,
        structure: &str,
        root: u64,
        leaf_value_size: u32,
        counting: bool,
        visit: &'v mut LeafVisitor<'v, 'w>,
    ) -> bool {
        let mut t = Tree {
            structure,
            leaf_value_size,
            seen: HashSet::new(),
            leaf_depth: None,
            intact: true,
            visit,
        };
        let c = self.count(root, counting);
        self.walk_node(&mut t, root, 0, None, 0, c);
        t.intact
    }

    fn fail(&mut self, t: &mut Tree, loc: u64, fault: Fault) {
        t.intact = false;
        self.report(
            Severity::Error,
            Error::block(t.structure, BlockKind::BtreeNode, loc, fault),
        );
    }

    fn walk_node(
        &mut self,
        t: &mut Tree<'_, '_, 'w>,
        loc: u64,
        lo: u64,
        hi: Option<u64>,
        depth: usize,
        counting: bool,
    ) {
        if depth > MAX_DEPTH {
            return self.fail(t, loc, Fault::Invalid("tree too deep".into()));
        }
        if !t.seen.insert(loc) {
            return self.fail(
                t,
                loc,
                Fault::Invalid("node reached twice in one tree (a cycle or a shared child)".into()),
            );
        }
        let block = match self.try_read(BlockKind::BtreeNode, loc) {
            Ok(b) => b,
            Err(f) => return self.fail(t, loc, f),
        };
        let node = match Node::parse(&block, loc, t.leaf_value_size) {
            Ok(n) => n,
            Err(f) => return self.fail(t, loc, f),
        };
        let h = node.header;
        if h.max_entries != calc_max_entries(h.value_size) {
            self.report(
                Severity::Warning,
                Error::block(
                    t.structure,
                    BlockKind::BtreeNode,
                    loc,
                    Fault::Invalid(format!(
                        "max_entries {}, the kernel uses {}",
                        h.max_entries,
                        calc_max_entries(h.value_size)
                    )),
                ),
            );
        }
        if depth > 0 && node.is_empty() {
            return self.fail(t, loc, Fault::Invalid("empty non-root node".into()));
        }
        if depth > 0 && h.nr_entries < h.max_entries / 3 {
            self.report(
                Severity::Note,
                Error::block(
                    t.structure,
                    BlockKind::BtreeNode,
                    loc,
                    Fault::Invalid(format!(
                        "non-root node under one-third full ({} of {})",
                        h.nr_entries, h.max_entries
                    )),
                ),
            );
        }
        if !node.is_empty() {
            let (first, last) = (node.key(0), node.key(node.len() - 1));
            if first < lo || hi.is_some_and(|hi| last >= hi) {
                let range = match hi {
                    Some(hi) => format!("[{lo}, {hi})"),
                    None => format!("[{lo}, ..)"),
                };
                return self.fail(
                    t,
                    loc,
                    Fault::Invalid(format!(
                        "keys {first}..={last} outside the range {range} given by the parent"
                    )),
                );
            }
        }
        if node.is_leaf() {
            match t.leaf_depth {
                Some(d) if d != depth => {
                    return self.fail(
                        t,
                        loc,
                        Fault::Invalid(format!("leaf at depth {depth}, other leaves at {d}")),
                    )
                }
                _ => t.leaf_depth = Some(depth),
            }
            for i in 0..node.len() {
                (t.visit)(self, node.key(i), node.value(i), counting);
            }
            return;
        }
        for i in 0..node.len() {
            let child = node.child(i);
            let child_hi = if i + 1 < node.len() {
                Some(node.key(i + 1))
            } else {
                hi
            };
            let c = self.count(child, counting);
            self.walk_node(t, child, node.key(i), child_hi, depth + 1, c);
        }
    }
}
