//! B-tree node layout: a 32-byte header, the key array sized by `max_entries`, then the
//! value array.

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::pdata::checksum::{self, BlockKind};
use crate::pdata::error::Fault;
use crate::pdata::io::BLOCK_SIZE;
use crate::pdata::layout::layout;

/// Bytes before the keys.
pub const NODE_HEADER_SIZE: usize = 32;
/// `flags` of an internal node.
pub const INTERNAL_NODE: u32 = 1;
/// `flags` of a leaf.
pub const LEAF_NODE: u32 = 2;
/// Value size of internal nodes: child block numbers.
pub const INTERNAL_VALUE_SIZE: u32 = 8;

/// The capacity the kernel gives a node whose values are `value_size` bytes: as many
/// key/value pairs as fit, rounded down to a multiple of 3.
pub fn calc_max_entries(value_size: u32) -> u32 {
    let n = crate::cast::in_block(BLOCK_SIZE - NODE_HEADER_SIZE) / (8 + value_size);
    n / 3 * 3
}

layout! {
    /// The node header.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct NodeHeader {
        /// [`INTERNAL_NODE`] or [`LEAF_NODE`].
        pub flags: u32 @ 4,
        /// Where the node says it lives.
        pub blocknr: u64 @ 8,
        /// Entries in use.
        pub nr_entries: u32 @ 16,
        /// Capacity.
        pub max_entries: u32 @ 20,
        /// Bytes per value.
        pub value_size: u32 @ 24,
    }
}

impl NodeHeader {
    /// Decodes the header of a node block.
    pub fn unpack(b: &[u8]) -> NodeHeader {
        NodeHeader::unpack_fields(b)
    }

    /// Encodes the header (the checksum is left to [`checksum::seal`]).
    pub fn pack(&self, b: &mut [u8]) {
        self.pack_fields(b);
        // The kernel's padding word, up to the keys.
        b[NodeHeader::FIELDS_END..NODE_HEADER_SIZE].fill(0);
    }
}

/// A node that passed every check that can be made on the node alone.
pub struct Node<'a> {
    /// Its header.
    pub header: NodeHeader,
    block: &'a [u8],
}

impl<'a> Node<'a> {
    /// Checks a node block read from `loc` whose leaves hold `leaf_value_size`-byte values:
    /// checksum and location, flags, value size, capacity, and keys strictly increasing.
    pub fn parse(block: &'a [u8], loc: u64, leaf_value_size: u32) -> Result<Node<'a>, Fault> {
        checksum::verify(block, BlockKind::BTREE_NODE, loc)?;
        Node::parse_verified(block, leaf_value_size)
    }

    /// [`Node::parse`] of a block whose checksum and location were checked as it was read
    /// ([`crate::pdata::walk::Walker::try_read`]): the rest of the checks, without computing
    /// the checksum of the whole block a second time.
    pub fn parse_verified(block: &'a [u8], leaf_value_size: u32) -> Result<Node<'a>, Fault> {
        let h = NodeHeader::unpack(block);
        let expected_vs = match h.flags {
            INTERNAL_NODE => INTERNAL_VALUE_SIZE,
            LEAF_NODE => leaf_value_size,
            f => {
                return Err(Fault::Invalid(format!(
                    "bad flags {f} (neither leaf nor internal)"
                )))
            }
        };
        if h.value_size != expected_vs {
            return Err(Fault::Invalid(format!(
                "value size {}, expected {expected_vs}",
                h.value_size
            )));
        }
        let used = NODE_HEADER_SIZE as u64 + (8 + h.value_size as u64) * h.max_entries as u64;
        if used > BLOCK_SIZE as u64 {
            return Err(Fault::Invalid(format!(
                "max_entries {} does not fit in a block",
                h.max_entries
            )));
        }
        if h.nr_entries > h.max_entries {
            return Err(Fault::Invalid(format!(
                "nr_entries {} exceeds max_entries {}",
                h.nr_entries, h.max_entries
            )));
        }
        let node = Node { header: h, block };
        for i in 1..node.len() {
            if node.key(i) <= node.key(i - 1) {
                return Err(Fault::Invalid(format!(
                    "keys out of order at entry {i} ({} after {})",
                    node.key(i),
                    node.key(i - 1)
                )));
            }
        }
        Ok(node)
    }

    /// Whether this is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.header.flags == LEAF_NODE
    }

    /// Entries in use.
    pub fn len(&self) -> usize {
        self.header.nr_entries as usize
    }

    /// Whether the node holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Key `i`.
    pub fn key(&self, i: usize) -> u64 {
        LE::read_u64(&self.block[NODE_HEADER_SIZE + 8 * i..])
    }

    /// The bytes of value `i`.
    pub fn value(&self, i: usize) -> &'a [u8] {
        let vs = self.header.value_size as usize;
        let start = NODE_HEADER_SIZE + 8 * self.header.max_entries as usize + vs * i;
        &self.block[start..start + vs]
    }

    /// Child `i` of an internal node.
    pub fn child(&self, i: usize) -> u64 {
        LE::read_u64(self.value(i))
    }
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn capacities_match_the_kernel() {
        // Leaf capacities of the kernel's nodes, by value size.
        for (value_size, max) in [(4, 336), (8, 252), (12, 201), (16, 168)] {
            assert_eq!(
                calc_max_entries(value_size),
                max,
                "{value_size}-byte values"
            );
        }
    }

    fn leaf(keys: &[u64]) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK_SIZE];
        let h = NodeHeader {
            flags: LEAF_NODE,
            blocknr: 0,
            nr_entries: keys.len() as u32,
            max_entries: calc_max_entries(8),
            value_size: 8,
        };
        h.pack(&mut b);
        for (i, k) in keys.iter().enumerate() {
            LE::write_u64(&mut b[NODE_HEADER_SIZE + 8 * i..], *k);
            let v = NODE_HEADER_SIZE + 8 * 252 + 8 * i;
            LE::write_u64(&mut b[v..], k * 10);
        }
        checksum::seal(&mut b, BlockKind::BTREE_NODE, 5);
        b
    }

    #[test]
    fn parses_a_leaf_and_its_values() {
        let b = leaf(&[1, 4, 9]);
        let n = Node::parse(&b, 5, 8).unwrap();
        assert!(n.is_leaf());
        assert_eq!((n.len(), n.key(2)), (3, 9));
        assert_eq!(LE::read_u64(n.value(1)), 40);
        // The checksum is the reader's to check: the rest is checked without it.
        let mut b = b;
        b[BLOCK_SIZE - 1] ^= 1;
        assert!(matches!(Node::parse(&b, 5, 8), Err(Fault::BadChecksum)));
        assert_eq!(Node::parse_verified(&b, 8).map(|n| n.len()).ok(), Some(3));
        assert!(Node::parse_verified(&b, 12).is_err());
    }

    #[test]
    fn rejects_unordered_keys_wrong_value_size_and_overfull_nodes() {
        let b = leaf(&[1, 4, 4]);
        assert!(matches!(Node::parse(&b, 5, 8), Err(Fault::Invalid(_))));
        let b = leaf(&[1]);
        assert!(matches!(Node::parse(&b, 5, 12), Err(Fault::Invalid(_))));
        let mut b = leaf(&[1]);
        LE::write_u32(&mut b[16..], 253);
        checksum::reseal(&mut b, BlockKind::BTREE_NODE);
        assert!(matches!(Node::parse(&b, 5, 8), Err(Fault::Invalid(_))));
        let mut b = leaf(&[1]);
        LE::write_u32(&mut b[20..], 600);
        checksum::reseal(&mut b, BlockKind::BTREE_NODE);
        assert!(matches!(Node::parse(&b, 5, 8), Err(Fault::Invalid(_))));
    }

    #[test]
    fn header_round_trip() {
        let b = leaf(&[3, 7]);
        let h = NodeHeader::unpack(&b);
        let mut c = vec![0u8; BLOCK_SIZE];
        h.pack(&mut c);
        assert_eq!(&c[4..32], &b[4..32]);
        assert_eq!(h.blocknr, 5);
    }
}
