//! An ordered walk over a b-tree that checks every rule a node must obey in its tree: key
//! ranges inherited from the parent, uniform leaf depth, no node reached twice, bounded
//! depth, block numbers in range. Visitors get decoded leaf values.

use std::collections::HashSet;

use super::node::{calc_max_entries, Node};
use crate::pdata::checksum::BlockKind;
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::Block;
use crate::pdata::report::Severity;
use crate::pdata::unpack::Unpack;
use crate::pdata::walk::{Parent, Walker};

/// Deeper than any tree that fits in 2^64 blocks with the kernel's fan-out: a deeper path
/// can only come from corruption.
const MAX_DEPTH: usize = 32;

/// Called for each leaf entry in key order: `(walker, key, value, leaf)`, where `leaf` is
/// the parent to hand back when following a pointer held in the value.
pub type LeafVisitor<'v, 'w, V> = dyn FnMut(&mut Walker<'w>, u64, V, Parent) + 'v;

struct Tree<'s, 'v, 'w, V> {
    structure: &'s str,
    seen: HashSet<u64>,
    leaf_depth: Option<usize>,
    intact: bool,
    visit: &'v mut LeafVisitor<'v, 'w, V>,
}

/// Where a node sits in its tree: the key range its parent gives it, its depth, and how
/// the walk reached it.
#[derive(Clone, Copy)]
struct Place {
    lo: u64,
    hi: Option<u64>,
    depth: usize,
    reach: Parent,
}

impl<'w> Walker<'w> {
    /// Walks the tree at `root` (a pointer held by `parent`) whose leaves hold `V`s,
    /// calling `visit` for each leaf entry in key order. Damaged subtrees are reported and
    /// skipped; the result says whether the whole tree was read.
    pub fn walk_btree<'v, V: Unpack>(
        &mut self,
        structure: &str,
        root: u64,
        parent: Parent,
        visit: &'v mut LeafVisitor<'v, 'w, V>,
    ) -> bool {
        let reach = self.follow(parent, root);
        self.walk_btree_reached(structure, root, reach, visit)
    }

    /// Like [`Walker::walk_btree`], for a root already followed (and counted).
    pub(crate) fn walk_btree_reached<'v, V: Unpack>(
        &mut self,
        structure: &str,
        root: u64,
        reach: Parent,
        visit: &'v mut LeafVisitor<'v, 'w, V>,
    ) -> bool {
        let mut t = Tree {
            structure,
            seen: HashSet::new(),
            leaf_depth: None,
            intact: true,
            visit,
        };
        let place = Place {
            lo: 0,
            hi: None,
            depth: 0,
            reach,
        };
        self.walk_node(&mut t, root, place);
        t.intact
    }

    fn fail<V>(&mut self, t: &mut Tree<'_, '_, 'w, V>, loc: u64, fault: Fault) {
        t.intact = false;
        self.report(
            Severity::Error,
            Error::block(t.structure, BlockKind::BTREE_NODE, loc, fault),
        );
    }

    fn walk_node<V: Unpack>(&mut self, t: &mut Tree<'_, '_, 'w, V>, loc: u64, place: Place) {
        let Some(block) = self.enter_node(t, loc, place.depth) else {
            return;
        };
        let node = match Node::parse_verified(&block, V::DISK_SIZE) {
            Ok(n) => n,
            Err(f) => return self.fail(t, loc, f),
        };
        if !self.check_fill(t, loc, &node, place.depth) || !self.check_keys(t, loc, &node, place) {
            return;
        }
        if node.is_leaf() {
            self.visit_leaf(t, loc, &node, place);
        } else {
            self.descend(t, &node, place);
        }
    }

    /// Phase 1: the node's place in the walk (depth, not reached twice) and its block.
    fn enter_node<V>(
        &mut self,
        t: &mut Tree<'_, '_, 'w, V>,
        loc: u64,
        depth: usize,
    ) -> Option<Box<Block>> {
        if depth > MAX_DEPTH {
            self.fail(t, loc, Fault::Invalid("tree too deep".into()));
            return None;
        }
        if !t.seen.insert(loc) {
            let f =
                Fault::Invalid("node reached twice in one tree (a cycle or a shared child)".into());
            self.fail(t, loc, f);
            return None;
        }
        match self.try_read(BlockKind::BTREE_NODE, loc) {
            Ok(b) => Some(b),
            Err(f) => {
                self.fail(t, loc, f);
                None
            }
        }
    }

    /// Phase 2: how full the node is for its place. Returns whether it may be used.
    fn check_fill<V>(
        &mut self,
        t: &mut Tree<'_, '_, 'w, V>,
        loc: u64,
        node: &Node,
        depth: usize,
    ) -> bool {
        let h = node.header;
        let structure = t.structure;
        let note = |w: &mut Walker, severity, msg: String| {
            let e = Error::block(structure, BlockKind::BTREE_NODE, loc, Fault::Invalid(msg));
            w.report(severity, e);
        };
        let kernel_max = calc_max_entries(h.value_size);
        if h.max_entries != kernel_max {
            let msg = format!(
                "max_entries {}, the kernel uses {kernel_max}",
                h.max_entries
            );
            note(self, Severity::Warning, msg);
        }
        if depth > 0 && node.is_empty() {
            self.fail(t, loc, Fault::Invalid("empty non-root node".into()));
            return false;
        }
        if depth > 0 && h.nr_entries < h.max_entries / 3 {
            let msg = format!(
                "non-root node under one-third full ({} of {})",
                h.nr_entries, h.max_entries
            );
            note(self, Severity::Note, msg);
        }
        true
    }

    /// Phase 3: the node's keys inside the range its parent gives it.
    fn check_keys<V>(
        &mut self,
        t: &mut Tree<'_, '_, 'w, V>,
        loc: u64,
        node: &Node,
        place: Place,
    ) -> bool {
        if node.is_empty() {
            return true;
        }
        let (first, last) = (node.key(0), node.key(node.len() - 1));
        if first >= place.lo && !place.hi.is_some_and(|hi| last >= hi) {
            return true;
        }
        let range = match place.hi {
            Some(hi) => format!("[{}, {hi})", place.lo),
            None => format!("[{}, ..)", place.lo),
        };
        let msg = format!("keys {first}..={last} outside the range {range} given by the parent");
        self.fail(t, loc, Fault::Invalid(msg));
        false
    }

    /// Phase 4a: a leaf at the depth of every other leaf hands its entries to the visitor.
    fn visit_leaf<V: Unpack>(
        &mut self,
        t: &mut Tree<'_, '_, 'w, V>,
        loc: u64,
        node: &Node,
        place: Place,
    ) {
        match t.leaf_depth {
            Some(d) if d != place.depth => {
                let msg = format!("leaf at depth {}, other leaves at {d}", place.depth);
                return self.fail(t, loc, Fault::Invalid(msg));
            }
            _ => t.leaf_depth = Some(place.depth),
        }
        for i in 0..node.len() {
            (t.visit)(self, node.key(i), V::unpack(node.value(i)), place.reach);
        }
    }

    /// Phase 4b: an internal node's children, each given the key range up to the next.
    fn descend<V: Unpack>(&mut self, t: &mut Tree<'_, '_, 'w, V>, node: &Node, place: Place) {
        for i in 0..node.len() {
            let child = node.child(i);
            let hi = match i + 1 < node.len() {
                true => Some(node.key(i + 1)),
                false => place.hi,
            };
            let reach = self.follow(place.reach, child);
            let child_place = Place {
                lo: node.key(i),
                hi,
                depth: place.depth + 1,
                reach,
            };
            self.walk_node(t, child, child_place);
        }
    }
}
