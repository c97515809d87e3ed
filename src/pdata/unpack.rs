//! Values of a fixed size as array blocks and b-tree leaves pack them: the one way a walk
//! decodes what it hands to a visitor.

use byteorder::{ByteOrder, LittleEndian as LE};

/// A value stored packed, `DISK_SIZE` bytes each, in array blocks or b-tree leaves.
pub trait Unpack: Sized {
    /// Bytes of one value on disk: the `value_size` of the blocks that hold it.
    const DISK_SIZE: u32;

    /// Decodes one value from its `DISK_SIZE` bytes. Walks only ever hand it a slice of
    /// exactly that length, cut from a block whose value size they checked.
    fn unpack(b: &[u8]) -> Self;
}

impl Unpack for u32 {
    const DISK_SIZE: u32 = 4;

    fn unpack(b: &[u8]) -> u32 {
        LE::read_u32(b)
    }
}

impl Unpack for u64 {
    const DISK_SIZE: u32 = 8;

    fn unpack(b: &[u8]) -> u64 {
        LE::read_u64(b)
    }
}

/// Decodes the packed values in `bytes` into `out`, replacing what it held. Trailing bytes
/// too few for a value are ignored.
pub fn unpack_all<V: Unpack>(bytes: &[u8], out: &mut Vec<V>) {
    out.clear();
    out.extend(bytes.chunks_exact(V::DISK_SIZE as usize).map(V::unpack));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_runs_decode_little_endian() {
        let bytes = [1, 0, 0, 0, 0, 1, 0, 0, 9];
        let mut v: Vec<u32> = vec![7];
        unpack_all(&bytes, &mut v);
        assert_eq!(v, [1, 256]);
        let mut w: Vec<u64> = Vec::new();
        unpack_all(&bytes, &mut w);
        assert_eq!(w, [0x0000_0100_0000_0001]);
    }
}
