//! Reference counts as a walk finds them, for comparison with the space map.

/// Counts, for every metadata block, the pointers a walk found to it, and remembers which
/// blocks have had their own pointers counted already. A block reached through two parents
/// (a subtree shared with the held snapshot) gets two references, but the pointers inside it
/// are counted once: the kernel records sharing only at the highest shared block.
pub struct RefCounts {
    counts: Vec<u32>,
    expanded: Vec<u64>,
}

impl RefCounts {
    /// Counts for blocks `0..nr_blocks`, all zero. `nr_blocks` must already be bounded by
    /// the device and space-map sizes.
    pub fn new(nr_blocks: u64) -> RefCounts {
        let n = crate::cast::index(nr_blocks);
        RefCounts {
            counts: vec![0; n],
            expanded: vec![0; n.div_ceil(64)],
        }
    }

    /// Blocks covered.
    pub fn len(&self) -> u64 {
        self.counts.len() as u64
    }

    /// Whether no block is covered.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Counts one pointer to `loc`. Returns true when this is the first time `loc` is
    /// reached, i.e. when the pointers inside it are still to be counted. Blocks out of
    /// range are ignored here; the walker reports them.
    pub fn reach(&mut self, loc: u64) -> bool {
        let Some(c) = self.counts.get_mut(crate::cast::index(loc)) else {
            return false;
        };
        *c = c.saturating_add(1);
        // Below the length of `counts`, as `loc` is.
        let (w, bit) = (crate::cast::index(loc / 64), 1u64 << (loc % 64));
        let first = self.expanded[w] & bit == 0;
        self.expanded[w] |= bit;
        first
    }

    /// The references counted to `loc`.
    pub fn get(&self, loc: u64) -> u32 {
        self.counts
            .get(crate::cast::index(loc))
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_reach_counts_but_does_not_expand() {
        let mut r = RefCounts::new(130);
        assert!(r.reach(129));
        assert!(!r.reach(129));
        assert_eq!(r.get(129), 2);
        assert_eq!(r.get(128), 0);
        assert!(!r.reach(130));
        assert_eq!(r.get(130), 0);
    }
}
