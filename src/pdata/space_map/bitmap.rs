//! Bitmap blocks: 2-bit reference counts, 32 to a little-endian word.
//!
//! Of an entry's two bits the lower-numbered one is the *high* bit of the count, so a raw
//! `(word >> p) & 3` of 2 means a count of 1. Getting this backwards is the classic bug.

use byteorder::{ByteOrder, LittleEndian as LE};

/// Bytes before the words.
pub const BITMAP_HEADER_SIZE: usize = 16;
/// Count code meaning "3 or more: see the overflow tree".
pub const CODE_OVERFLOW: u8 = 3;

fn position(entry: u64) -> (usize, u32) {
    let word = BITMAP_HEADER_SIZE + 8 * (entry / 32) as usize;
    (word, 2 * (entry % 32) as u32)
}

/// The count code (0, 1, 2 or [`CODE_OVERFLOW`]) of `entry` in a bitmap block.
pub fn get_code(block: &[u8], entry: u64) -> u8 {
    let (o, p) = position(entry);
    let w = LE::read_u64(&block[o..]);
    let hi = u8::from((w >> p) & 1 != 0);
    let lo = u8::from((w >> (p + 1)) & 1 != 0);
    (hi << 1) | lo
}

/// Sets the count code of `entry` in a bitmap block.
pub fn set_code(block: &mut [u8], entry: u64, code: u8) {
    let (o, p) = position(entry);
    let mut w = LE::read_u64(&block[o..]);
    w &= !(3u64 << p);
    w |= (((code as u64) >> 1) & 1) << p;
    w |= ((code as u64) & 1) << (p + 1);
    LE::write_u64(&mut block[o..], w);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::io::BLOCK_SIZE;

    #[test]
    fn bit_order_matches_the_kernel() {
        let mut b = vec![0u8; BLOCK_SIZE];
        LE::write_u64(&mut b[16..], 0x02AA_AAAA);
        for j in 0..13 {
            assert_eq!(get_code(&b, j), 1, "entry {j}");
        }
        for j in 13..32 {
            assert_eq!(get_code(&b, j), 0, "entry {j}");
        }
    }

    #[test]
    fn set_then_get_every_code() {
        let mut b = vec![0u8; BLOCK_SIZE];
        for (j, code) in [(0u64, 1u8), (31, 2), (32, 3), (16_319, 1)] {
            set_code(&mut b, j, code);
            assert_eq!(get_code(&b, j), code);
        }
        assert_eq!(LE::read_u64(&b[16..]) & 3, 2);
        assert_eq!(get_code(&b, 1), 0);
    }
}
