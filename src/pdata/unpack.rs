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

    /// The values packed in `bytes` seen where they lie, when their layout in memory is
    /// the disk's; `None` when they must be decoded one by one.
    fn view(_bytes: &[u8]) -> Option<&[Self]> {
        None
    }
}

/// Little-endian integers seen in place on a little-endian machine, when `bytes` is
/// aligned for them and holds a whole number of them.
macro_rules! view_in_place {
    ($t:ty) => {
        #[cfg(all(target_endian = "little", not(portable)))]
        fn view(bytes: &[u8]) -> Option<&[$t]> {
            // SAFETY: every bit pattern is a valid integer, and `align_to` hands out only
            // the aligned middle of `bytes`, which is used only when it is all of it.
            let (head, values, tail) = unsafe { bytes.align_to::<$t>() };
            (head.is_empty() && tail.is_empty()).then_some(values)
        }
    };
}

impl Unpack for u32 {
    const DISK_SIZE: u32 = 4;

    fn unpack(b: &[u8]) -> u32 {
        LE::read_u32(b)
    }

    view_in_place!(u32);
}

impl Unpack for u64 {
    const DISK_SIZE: u32 = 8;

    fn unpack(b: &[u8]) -> u64 {
        LE::read_u64(b)
    }

    view_in_place!(u64);
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

    /// Whether this build sees values in place at all (not on a big-endian machine, nor with
    /// `--cfg portable`).
    const IN_PLACE: bool = cfg!(all(target_endian = "little", not(portable)));

    #[test]
    fn values_seen_in_place_are_the_values_decoded() {
        let bytes: Vec<u64> = (0..64u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let bytes: Vec<u8> = bytes.iter().flat_map(|v| v.to_le_bytes()).collect();
        for (from, len) in [(0, 512), (8, 256), (4, 64), (1, 64), (0, 6)] {
            let b = &bytes[from..from + len];
            let mut decoded: Vec<u32> = Vec::new();
            unpack_all(b, &mut decoded);
            if let Some(seen) = u32::view(b) {
                assert_eq!(seen, decoded, "{from} {len}");
            } else if IN_PLACE {
                // Only a slice that is misaligned or cut inside a value is decoded.
                assert!(
                    len % 4 != 0 || (b.as_ptr() as usize) % 4 != 0,
                    "{from} {len}"
                );
            }
            let mut wide: Vec<u64> = Vec::new();
            unpack_all(b, &mut wide);
            if let Some(seen) = u64::view(b) {
                assert_eq!(seen, wide, "{from} {len}");
            }
        }
        assert_eq!(
            u32::view(&bytes[..512]).is_some(),
            IN_PLACE,
            "an aligned run is seen in place where values can be"
        );
    }
}
