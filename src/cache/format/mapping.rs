//! The values of the mapping array: one `le64` per cache block, the origin block in the
//! high 48 bits and flags in the low 16.

use super::superblock::VERSION_1;

/// Bytes per mapping-array value.
pub const MAPPING_VALUE_SIZE: u32 = 8;
/// Flag: the cache block holds the origin block.
pub const M_VALID: u16 = 1;
/// Flag, version 1 only: the cached copy differs from the origin's.
pub const M_DIRTY: u16 = 2;
/// Bits of the value below the origin block.
const FLAG_BITS: u32 = 16;
/// The largest origin block a value can hold.
pub const MAX_OBLOCK: u64 = (1 << (64 - FLAG_BITS)) - 1;

/// One value of the mapping array, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappingValue {
    /// The origin block (meaningful only with [`M_VALID`]).
    pub oblock: u64,
    /// The flags, known or not.
    pub flags: u16,
}

impl MappingValue {
    /// Decodes a value as read from the array.
    pub fn unpack(value: u64) -> MappingValue {
        MappingValue {
            oblock: value >> FLAG_BITS,
            // The low 16 bits, by definition of the encoding.
            #[allow(clippy::cast_possible_truncation)]
            flags: value as u16,
        }
    }

    /// Encodes the value; `oblock` must be at most [`MAX_OBLOCK`].
    pub fn pack(self) -> u64 {
        debug_assert!(self.oblock <= MAX_OBLOCK);
        self.oblock << FLAG_BITS | u64::from(self.flags)
    }

    /// Whether the cache block holds an origin block.
    pub fn is_valid(self) -> bool {
        self.flags & M_VALID != 0
    }

    /// Checks what only corruption can make wrong: flags the version does not define
    /// (version 2 keeps dirty flags in its bitset, so `M_DIRTY` is unknown there), and an
    /// unmapped entry that is not all zeros (the kernel writes 0 when it unmaps a block).
    pub fn check(self, version: u32) -> Result<(), String> {
        let known = if version == VERSION_1 {
            M_VALID | M_DIRTY
        } else {
            M_VALID
        };
        if self.flags & !known != 0 {
            return Err(format!(
                "flags {:#x} not defined in version {version}",
                self.flags
            ));
        }
        if !self.is_valid() && (self.oblock != 0 || self.flags != 0) {
            return Err(format!(
                "unmapped, yet holds origin block {} and flags {:#x}",
                self.oblock, self.flags
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::superblock::VERSION_2;
    use super::*;

    #[test]
    fn the_origin_block_is_above_the_sixteen_flag_bits() {
        let v = MappingValue {
            oblock: 0x1234,
            flags: M_VALID | M_DIRTY,
        };
        assert_eq!(v.pack(), 0x1234_0003);
        assert_eq!(MappingValue::unpack(0x1234_0003), v);
        let top = MappingValue::unpack(u64::MAX);
        assert_eq!((top.oblock, top.flags), (MAX_OBLOCK, 0xFFFF));
        assert_eq!(MappingValue::unpack(top.pack()), top);
    }

    #[test]
    fn flags_are_checked_per_version() {
        let v = |oblock, flags| MappingValue { oblock, flags };
        assert_eq!(v(0, 0).check(VERSION_1), Ok(()));
        assert_eq!(v(7, M_VALID | M_DIRTY).check(VERSION_1), Ok(()));
        assert_eq!(v(7, M_VALID).check(VERSION_2), Ok(()));
        assert!(v(7, M_VALID | M_DIRTY).check(VERSION_2).is_err());
        assert!(v(7, M_VALID | 4).check(VERSION_1).is_err());
        assert!(
            v(7, 0).check(VERSION_1).is_err(),
            "unmapped with an origin block"
        );
        assert!(
            v(0, M_DIRTY).check(VERSION_1).is_err(),
            "unmapped and dirty"
        );
    }
}
