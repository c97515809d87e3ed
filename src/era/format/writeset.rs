//! Writesets: one bitset per era, archived in the writeset tree or current in the superblock.

use crate::pdata::layout::{field_via_pack, layout};
use crate::pdata::unpack::Unpack;

/// Bytes of a writeset-tree leaf value.
pub const WRITESET_VALUE_SIZE: u32 = 12;

layout! {
    /// `writeset_disk`: a bitset's length and root. Root 0 means "none".
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct WritesetDisk {
        /// Bits in the bitset: the origin's block count when the era began.
        pub nr_bits: u32 @ 0,
        /// Root of the bitset's array b-tree.
        pub root: u64 @ 4,
    }
}

impl WritesetDisk {
    /// Decodes the 12 packed bytes.
    pub fn unpack(b: &[u8]) -> WritesetDisk {
        WritesetDisk::unpack_fields(b)
    }

    /// Encodes into 12 bytes.
    pub fn pack(&self, b: &mut [u8]) {
        self.pack_fields(b);
    }
}

field_via_pack!(WritesetDisk, WRITESET_VALUE_SIZE as usize);

impl Unpack for WritesetDisk {
    const DISK_SIZE: u32 = WRITESET_VALUE_SIZE;

    fn unpack(b: &[u8]) -> WritesetDisk {
        WritesetDisk::unpack(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let w = WritesetDisk {
            nr_bits: 1024,
            root: 0x0102_0304_0506,
        };
        let mut b = [0u8; 12];
        w.pack(&mut b);
        assert_eq!(b[0..4], 1024u32.to_le_bytes());
        assert_eq!(b[4..12], [6, 5, 4, 3, 2, 1, 0, 0]);
        assert_eq!(WritesetDisk::FIELDS_END, WRITESET_VALUE_SIZE as usize);
        assert_eq!(WritesetDisk::unpack(&b), w);
        assert_eq!(<WritesetDisk as Unpack>::unpack(&b), w);
    }
}
