//! Writing the era tools' large text outputs (era_dump's XML, era_invalidate's ranges) at
//! the speed of the output: numbers without the formatting machinery, consecutive block
//! numbers counted up in ASCII, and pieces formatted on every core and written in order
//! from buffers that are reused.

use std::io::{self, Write};

use rayon::prelude::*;

/// Appends `v` in decimal.
// Inlined into the formatting loops: a call per number costs as much as its digits.
#[inline(always)]
pub fn put_u64(buf: &mut Vec<u8>, v: u64) {
    if v < E8 {
        put_significant(buf, digits8(v));
    } else if v < E16 {
        put_medium(buf, digits8(v / E8), digits8(v % E8));
    } else {
        put_large(buf, v);
    }
}

/// Appends `a`, `between` and `b`, the numbers in decimal. Two numbers below 10^8 (nearly
/// every line of a list of runs in blocks) are converted together, one in each half of a
/// vector register; two of 9 to 16 digits (block numbers past 10^8, and the byte and sector
/// offsets of an incremental backup's list) in two such steps, their high and their low
/// eight digits.
#[inline(always)]
pub fn put_u64_pair(buf: &mut Vec<u8>, a: u64, between: &[u8], b: u64) {
    if a < E8 && b < E8 {
        let (da, db) = digits8_pair(a, b);
        put_significant(buf, da);
        buf.extend_from_slice(between);
        put_significant(buf, db);
    } else if (E8..E16).contains(&a) && (E8..E16).contains(&b) {
        let (ha, hb) = digits8_pair(a / E8, b / E8);
        let (la, lb) = digits8_pair(a % E8, b % E8);
        put_medium(buf, ha, la);
        buf.extend_from_slice(between);
        put_medium(buf, hb, lb);
    } else {
        put_u64(buf, a);
        buf.extend_from_slice(between);
        put_u64(buf, b);
    }
}

/// Appends the eight digits `d` of [`digits8`] without their leading zeros.
#[inline(always)]
fn put_significant(buf: &mut Vec<u8>, d: u64) {
    let lead = leading_zero_digits(d);
    put_prefix(
        buf,
        &((d | ASCII_ZEROS) >> (8 * lead)).to_le_bytes(),
        8 - lead,
    );
}

/// Appends a number of 9 to 16 digits, given as the [`digits8`] of its high eight digits
/// (not all zeros) and of its low eight.
#[inline(always)]
fn put_medium(buf: &mut Vec<u8>, high: u64, low: u64) {
    put_significant(buf, high);
    buf.extend_from_slice(&(low | ASCII_ZEROS).to_le_bytes());
}

/// The numbers [`digits8`] converts are below this.
const E8: u64 = 100_000_000;
/// Numbers below this have at most sixteen digits: two [`digits8`].
const E16: u64 = E8 * E8;
/// `'0'` in each of eight bytes.
const ASCII_ZEROS: u64 = 0x3030_3030_3030_3030;

/// Numbers of 17 to 20 digits (at least [`E16`]): eight digits at a time.
#[inline(never)]
fn put_large(buf: &mut Vec<u8>, v: u64) {
    // At most four digits above the sixteen: 2^64 < 2 * 10^19.
    let (top, rest) = (v / E16, v % E16);
    put_significant(buf, digits8(top));
    buf.extend_from_slice(&(digits8(rest / E8) | ASCII_ZEROS).to_le_bytes());
    buf.extend_from_slice(&(digits8(rest % E8) | ASCII_ZEROS).to_le_bytes());
}

/// The eight decimal digits of `v` (below 10^8, with leading zeros) as byte values 0 to 9,
/// the first in the lowest byte. Computed in the register, a few multiplications for all
/// eight: `v` is cut into two halves of four digits, each into two pairs, each pair into
/// two digits, every lane divided at once by a multiplication and a shift that equal the
/// division in the lane's range (x / 100 = x * 10486 >> 20 below 10^4, x / 10 =
/// x * 103 >> 10 below 100). No table: a table's lines missing from the cache cost more
/// than the arithmetic.
#[inline]
fn digits8(v: u64) -> u64 {
    // No lane leaves its bits (9999 * 10486 < 2^27, 99 * 103 < 2^14), so the wrapping
    // operations never wrap; checked ones would test for it on every number.
    let x = (v / 10_000) | ((v % 10_000) << 32);
    let hundreds = (x.wrapping_mul(10_486) >> 20) & 0x0000_007f_0000_007f;
    let x = hundreds | x.wrapping_sub(hundreds.wrapping_mul(100)) << 16;
    let tens = (x.wrapping_mul(103) >> 10) & 0x000f_000f_000f_000f;
    tens | x.wrapping_sub(tens.wrapping_mul(10)) << 8
}

/// [`digits8`] of `a` and of `b` (both below 10^8) at once: the same steps on the two
/// halves of an SSE2 register (part of x86-64), with the divisions done as multiplications
/// that equal them in each lane's range (x / 10^4 = x * 3518437209 >> 45 below 2^32, x / 100
/// = x * 5243 >> 19 below 10^4, x / 10 = x * 6554 >> 16 below 100), none of which leaves its
/// lane.
#[cfg(all(target_arch = "x86_64", not(portable)))]
#[inline(always)]
// The intrinsics take and give lanes as i64: the casts only reinterpret the same 64 bits.
#[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
fn digits8_pair(a: u64, b: u64) -> (u64, u64) {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86-64; the intrinsics only compute on registers.
    unsafe {
        let v = _mm_set_epi64x(b as i64, a as i64);
        // The four high digits in the low half of each number's lane, the four low above.
        let high = _mm_srli_epi64(_mm_mul_epu32(v, _mm_set1_epi64x(3_518_437_209)), 45);
        let low = _mm_sub_epi64(v, _mm_mul_epu32(high, _mm_set1_epi64x(10_000)));
        let x = _mm_or_si128(high, _mm_slli_epi64(low, 32));
        // Each group of four digits into two pairs, in 16-bit lanes.
        let hundreds = _mm_srli_epi16(_mm_mulhi_epu16(x, _mm_set1_epi16(5243)), 3);
        let rest = _mm_sub_epi16(x, _mm_mullo_epi16(hundreds, _mm_set1_epi16(100)));
        let y = _mm_or_si128(hundreds, _mm_slli_epi32(rest, 16));
        // Each pair into two digits, in bytes.
        let tens = _mm_mulhi_epu16(y, _mm_set1_epi16(6554));
        let ones = _mm_sub_epi16(y, _mm_mullo_epi16(tens, _mm_set1_epi16(10)));
        let d = _mm_or_si128(tens, _mm_slli_epi16(ones, 8));
        (
            _mm_cvtsi128_si64(d) as u64,
            _mm_cvtsi128_si64(_mm_unpackhi_epi64(d, d)) as u64,
        )
    }
}

/// [`digits8`] of `a` and of `b` where there is no vector version (or with `--cfg
/// portable`, so that CI tests this path on x86-64 too).
#[cfg(any(not(target_arch = "x86_64"), portable))]
#[inline(always)]
fn digits8_pair(a: u64, b: u64) -> (u64, u64) {
    (digits8(a), digits8(b))
}

/// How many of the eight digits of [`digits8`] are leading zeros; the last digit counts
/// as significant, so that 0 is written "0".
#[inline]
fn leading_zero_digits(d: u64) -> usize {
    ((d | 1 << 56).trailing_zeros() / 8) as usize
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
        // At most 20 digits.
        #[allow(clippy::cast_possible_truncation)]
        let len = tmp.len() as u32;
        Counter {
            digits,
            len,
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
    /// Whether every piece is formatted on the calling thread.
    serial: bool,
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
            serial: false,
        }
    }

    /// Pieces formatted on the calling thread, one after the other, into one buffer: for
    /// output too small to pay for waking the other cores and sharing them.
    pub fn serial() -> Pieces {
        Pieces {
            bufs: vec![Vec::new()],
            serial: true,
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
        if pieces == 1 || self.serial {
            // Not worth waking the other cores.
            let b = &mut self.bufs[0];
            for i in 0..pieces {
                b.clear();
                f(i, b);
                out.write_all(b)?;
            }
            return Ok(());
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
    fn pairs_are_converted_as_two_single_numbers() {
        // Each lane's arithmetic is exact only in its range: a stride through the whole
        // range in both halves, the edges of every digit count, and numbers of every length
        // together.
        let edges: Vec<u64> = (0..20)
            .flat_map(|k| {
                let p = 10u64.pow(k);
                [p - 1, p, p + 1, p + p / 3]
            })
            .chain([E8 - 1, 2_147_483_647, u64::MAX])
            .collect();
        let stride = (0..E8).step_by(89).map(|v| (v, E8 - 1 - v));
        let pairs = edges
            .iter()
            .flat_map(|&a| edges.iter().map(move |&b| (a, b)));
        let mut rng = crate::pdata::seeded::SplitMix(24);
        let mut random = || {
            let v = rng.next();
            v >> (v % 64)
        };
        let randoms: Vec<(u64, u64)> = (0..20_000).map(|_| (random(), random())).collect();
        for (a, b) in stride.chain(pairs).chain(randoms) {
            if a < E8 && b < E8 {
                assert_eq!(digits8_pair(a, b), (digits8(a), digits8(b)), "{a} {b}");
            }
            let mut buf = b"x".to_vec();
            put_u64_pair(&mut buf, a, b"\" end=\"", b);
            assert_eq!(buf, format!("x{a}\" end=\"{b}").into_bytes(), "{a} {b}");
        }
    }

    #[test]
    fn eight_digits_are_those_of_the_number_below_ten_to_the_eight() {
        // Every lane's division is exact only in its range: a stride through the whole
        // range, and the edges of every lane.
        let edges = (0..8).flat_map(|k| {
            let p = 10u64.pow(k);
            [p - 1, p, 2 * p - 1, 5 * p, 10 * p - 1]
        });
        for v in (0..E8).step_by(97).chain(edges).chain([E8 - 1]) {
            let expected = format!("{v:08}");
            let d = digits8(v);
            let got: Vec<u8> = d.to_le_bytes().iter().map(|b| b + b'0').collect();
            assert_eq!(got, expected.as_bytes(), "{v}");
            assert_eq!(8 - leading_zero_digits(d), v.to_string().len(), "{v}");
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
