//! Integer conversions whose bound is known where they are made. The crate has no `as` cast
//! that could lose a value (Cargo.toml's lints); these say the bound that makes a narrowing
//! lossless, once, instead of an exception at every use.

/// An index, offset or length of something held in memory, as a `usize`. A value that no
/// `usize` can hold (only on a 32-bit machine) becomes `usize::MAX`, which no slice reaches:
/// a lookup finds nothing and indexing panics, where a truncated value would reach the wrong
/// bytes. On a 64-bit machine this compiles to nothing.
#[inline]
pub(crate) fn index(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// A size, count or offset within one metadata block (at most 4096), as the `u32` of an
/// on-disk header field.
#[inline]
pub(crate) const fn in_block(n: usize) -> u32 {
    debug_assert!(n <= crate::pdata::io::BLOCK_SIZE);
    // At most BLOCK_SIZE, far below 2^32.
    #[allow(clippy::cast_possible_truncation)]
    let v = n as u32;
    v
}

/// A count or length that a format bounds far below 2^32, as the `u32` of its field. One
/// past 2^32 (which the format's bounds exclude) becomes `u32::MAX`, which the format's
/// reader refuses, rather than wrapping to a value that looks valid.
#[inline]
pub(crate) fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
