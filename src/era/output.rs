//! Writing the era tools' large text outputs (era_dump's XML, era_invalidate's ranges) at
//! the speed of the output: numbers without the formatting machinery, consecutive block
//! numbers counted up in ASCII, and pieces formatted on every core and written in order
//! from buffers that are reused.

use std::io::{self, Write};

use rayon::prelude::*;

/// The decimal digits of 0 to 99, two bytes each.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                            2021222324252627282930313233343536373839\
                            4041424344454647484950515253545556575859\
                            6061626364656667686970717273747576777879\
                            8081828384858687888990919293949596979899";

/// Appends `v` in decimal.
#[inline]
pub fn put_u64(buf: &mut Vec<u8>, v: u64) {
    // Eras and small counts: most numbers written but block numbers.
    if v < 10 {
        buf.push(b'0' + v as u8);
    } else if v < 100 {
        buf.extend_from_slice(&pair(v));
    } else {
        put_large(buf, v);
    }
}

fn pair(v: u64) -> [u8; 2] {
    let r = v as usize * 2;
    [PAIRS[r], PAIRS[r + 1]]
}

/// Numbers of 3 to 20 digits. The digits come from a table four at a time into a register
/// and are stored at once: digits stored one pair at a time and then copied out would be
/// read back before the processor has finished storing them, which stalls it on every
/// number.
#[inline]
fn put_large(buf: &mut Vec<u8>, v: u64) {
    const E8: u64 = 100_000_000;
    let n = v.ilog10() as usize + 1;
    if n <= 8 {
        put_prefix(buf, &(eight_digits(v) >> (8 * (8 - n))).to_le_bytes(), n);
        return;
    }
    let (top, rest) = (v / (E8 * E8), v % (E8 * E8));
    if n > 16 {
        // At most four digits above the sixteen: 2^64 < 2 * 10^19.
        put_prefix(
            buf,
            &(FOURS[top as usize] >> (8 * (20 - n))).to_le_bytes(),
            n - 16,
        );
    }
    let digits = eight_digits(rest / E8) as u128 | (eight_digits(rest % E8) as u128) << 64;
    let m = n.min(16);
    put_prefix(buf, &(digits >> (8 * (16 - m))).to_le_bytes(), m);
}

/// The eight decimal digits of `v` (below 10^8, with leading zeros) in ASCII, the first
/// in the lowest byte: two lookups of four digits.
#[inline]
fn eight_digits(v: u64) -> u64 {
    FOURS[(v / 10_000) as usize] as u64 | (FOURS[(v % 10_000) as usize] as u64) << 32
}

/// The four decimal digits of 0 to 9999 in ASCII, the first in the lowest byte.
static FOURS: [u32; 10_000] = fours();

const fn fours() -> [u32; 10_000] {
    let mut t = [0u32; 10_000];
    let mut i = 0;
    while i < 10_000 {
        let d = [i / 1000, i / 100 % 10, i / 10 % 10, i % 10];
        t[i] = u32::from_le_bytes([
            b'0' + d[0] as u8,
            b'0' + d[1] as u8,
            b'0' + d[2] as u8,
            b'0' + d[3] as u8,
        ]);
        i += 1;
    }
    t
}

/// Appends the first `n` bytes of `bytes`. Copying the whole array, whose size is known,
/// and cutting the rest off is cheaper than a copy of `n` bytes, which costs a call.
#[inline]
pub fn put_prefix<const N: usize>(buf: &mut Vec<u8>, bytes: &[u8; N], n: usize) {
    let len = buf.len();
    buf.extend_from_slice(bytes);
    buf.truncate(len + n.min(N));
}

/// `'9'` and `'0'` in every byte.
const NINES: u128 = 0x3939_3939_3939_3939_3939_3939_3939_3939;
const ZEROS: u128 = 0x3030_3030_3030_3030_3030_3030_3030_3030;

/// A number written in decimal that counts up by one in a few instructions, for the block
/// numbers of consecutive lines.
///
/// The digits live in a register, not in memory: bytes stored one at a time and then read
/// back sixteen at a time would stall the processor on every line.
pub struct Counter {
    /// The digits as the low bytes of a big-endian number (the last digit is the least
    /// significant byte), zero bytes above them.
    digits: u128,
    len: u32,
    value: u64,
}

impl Counter {
    /// A counter at `v` (below 10^15).
    pub fn new(v: u64) -> Counter {
        let mut tmp = Vec::with_capacity(20);
        put_u64(&mut tmp, v);
        let digits = tmp.iter().fold(0u128, |d, &b| d << 8 | b as u128);
        Counter {
            digits,
            len: tmp.len() as u32,
            value: v,
        }
    }

    /// Appends the number to `buf`.
    #[inline]
    pub fn put(&self, buf: &mut Vec<u8>) {
        let aligned = self.digits << (8 * (16 - self.len));
        put_prefix(buf, &aligned.to_be_bytes(), self.len as usize);
    }

    /// Adds one.
    #[inline]
    pub fn incr(&mut self) {
        self.value += 1;
        // The trailing nines become zeros and the digit before them goes up by one.
        let nines = (self.digits ^ NINES).trailing_zeros() / 8;
        if nines >= self.len {
            *self = Counter::new(self.value);
            return;
        }
        let mask = (1u128 << (8 * nines)) - 1;
        self.digits = ((self.digits & !mask) + (1u128 << (8 * nines))) | (ZEROS & mask);
    }
}

/// Buffers for output formatted on every core, kept from one use to the next.
pub struct Pieces {
    bufs: Vec<Vec<u8>>,
}

impl Default for Pieces {
    fn default() -> Pieces {
        Pieces::new()
    }
}

impl Pieces {
    /// A buffer for one piece; more once pieces are formatted in parallel.
    pub fn new() -> Pieces {
        Pieces {
            bufs: vec![Vec::new()],
        }
    }

    /// How many pieces are formatted at once: two per core, so that one slow piece does
    /// not leave the others idle.
    pub fn batch(&mut self) -> usize {
        if self.bufs.len() == 1 {
            // The cores, not the pool's threads: asking the pool would start it, and one
            // piece is written without it. Asked only here: it reads files of the system.
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            self.bufs.resize(cores * 2, Vec::new());
        }
        self.bufs.len()
    }

    /// Formats pieces `0..pieces` with `f` on every core and writes them to `out` in
    /// order, [`Pieces::batch`] at a time. Memory: one batch of output.
    pub fn write(
        &mut self,
        out: &mut dyn Write,
        pieces: usize,
        f: &(dyn Fn(usize, &mut Vec<u8>) + Sync),
    ) -> io::Result<()> {
        if pieces == 1 {
            // Not worth waking the other cores.
            let b = &mut self.bufs[0];
            b.clear();
            f(0, b);
            return out.write_all(b);
        }
        let mut first = 0;
        let batch = self.batch();
        while first < pieces {
            let n = (pieces - first).min(batch);
            self.bufs[..n]
                .par_iter_mut()
                .enumerate()
                .for_each(|(i, b)| {
                    b.clear();
                    f(first + i, b);
                });
            for b in &self.bufs[..n] {
                out.write_all(b)?;
            }
            first += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_of_every_length_are_written_as_the_standard_library_writes_them() {
        let mut values = vec![0, 1, 9, u64::MAX, u64::MAX - 1, 4_294_967_295];
        for k in 1..20 {
            let p = 10u64.pow(k);
            values.extend([p - 1, p, p + 1, p / 2 + 7, p + p / 3]);
        }
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            values.push(s >> (s % 64));
        }
        for v in values {
            let mut b = b"x".to_vec();
            put_u64(&mut b, v);
            assert_eq!(b, format!("x{v}").into_bytes(), "{v}");
        }
    }

    #[test]
    fn decimal_and_counting() {
        let mut b = Vec::new();
        for v in [
            0u64,
            7,
            10,
            99,
            100,
            101,
            999,
            1000,
            4_294_967_295,
            u64::MAX,
        ] {
            b.clear();
            put_u64(&mut b, v);
            assert_eq!(b, v.to_string().as_bytes());
        }
        for start in [
            0u64,
            8,
            99,
            12_345_678_999,
            4_294_967_290,
            999_999_999_999_000,
        ] {
            let mut c = Counter::new(start);
            for v in start..start + 1100 {
                b.clear();
                c.put(&mut b);
                assert_eq!(b, v.to_string().as_bytes());
                c.incr();
            }
        }
    }

    #[test]
    fn pieces_come_out_in_order() {
        let mut p = Pieces::new();
        for _ in 0..2 {
            let mut out = Vec::new();
            p.write(&mut out, 10, &|i, b| put_u64(b, i as u64 * 11))
                .unwrap();
            assert_eq!(out, b"0112233445566778899");
        }
        let mut out = Vec::new();
        p.write(&mut out, 0, &|_, _| unreachable!()).unwrap();
        assert!(out.is_empty());
    }
}
