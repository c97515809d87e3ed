//! The 16-byte header at offset 0 of a disk log, and the header area around it.

use super::geometry::{BITMAP_START, MAX_REGIONS};
use crate::log::LogError;
use crate::pdata::layout::layout;

/// `"MiRr"` read as a big-endian string; stored little-endian (`72 52 69 4D` on disk).
pub const MAGIC: u32 = 0x4D69_5272;

/// The version the kernel writes.
pub const VERSION: u32 = 2;

/// The version before the 2006 bit-order change; identical on little-endian hosts.
pub const VERSION_1: u32 = 1;

/// Bytes of the header proper.
pub const HEADER_SIZE: usize = 16;

/// What LVM2 writes into a log it has just initialised and not yet activated.
pub const NR_REGIONS_LVM_INITIALISED: u64 = u64::MAX;

layout! {
    /// The header fields, as stored (no field is interpreted by unpacking).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Header {
        /// Must be [`MAGIC`].
        pub magic: u32 @ 0,
        /// 2, or 1 (accepted and read like 2).
        pub version: u32 @ 4,
        /// Region count of the last activation that wrote the log.
        pub nr_regions: u64 @ 8,
    }
}

/// How `nr_regions` is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NrRegions {
    /// A region count the kernel can have written.
    Count(u64),
    /// LVM2's all-ones value: initialised, never activated; the bits are used as they are.
    LvmInitialised,
    /// At least 2^32: the kernel would truncate it.
    Invalid(u64),
}

impl Header {
    /// The header the kernel writes for `nr_regions` regions.
    pub fn new(nr_regions: u64) -> Header {
        Header {
            magic: MAGIC,
            version: VERSION,
            nr_regions,
        }
    }

    /// Reads the header from the first 16 bytes of `buf`.
    pub fn unpack(buf: &[u8]) -> Result<Header, LogError> {
        let Some(h) = buf.get(..HEADER_SIZE) else {
            return Err(LogError::Truncated {
                what: "log header",
                need: HEADER_SIZE as u64,
                size: buf.len() as u64,
            });
        };
        Ok(Header::unpack_fields(h))
    }

    /// Writes the header into the first 16 bytes of `buf` (which must hold them).
    pub fn pack(&self, buf: &mut [u8]) {
        self.pack_fields(buf);
    }

    /// Whether the magic is the disk log's.
    pub fn magic_ok(&self) -> bool {
        self.magic == MAGIC
    }

    /// Errors unless the magic is the disk log's.
    pub fn check_magic(&self) -> Result<(), LogError> {
        if self.magic_ok() {
            Ok(())
        } else {
            Err(LogError::BadMagic { found: self.magic })
        }
    }

    /// Errors unless the version is 1 or 2.
    pub fn check_version(&self) -> Result<(), LogError> {
        match self.version {
            VERSION | VERSION_1 => Ok(()),
            v => Err(LogError::BadVersion { found: v }),
        }
    }

    /// The interpretation of `nr_regions`.
    pub fn regions(&self) -> NrRegions {
        match self.nr_regions {
            NR_REGIONS_LVM_INITIALISED => NrRegions::LvmInitialised,
            n if n > MAX_REGIONS => NrRegions::Invalid(n),
            n => NrRegions::Count(n),
        }
    }
}

/// Contents of the unused bytes 16..1023 of the header area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// All zero (the kernel on a zeroed device).
    Zero,
    /// All 0xFF (LVM2 initialised the log "in sync").
    Ones,
    /// Anything else; harmless, the kernel preserves it.
    Mixed,
}

impl Padding {
    /// Classifies bytes 16..1023 of `buf` (what is there of them).
    pub fn of(buf: &[u8]) -> Padding {
        let end = buf.len().min(BITMAP_START);
        let area = buf.get(HEADER_SIZE..end).unwrap_or(&[]);
        if area.iter().all(|&b| b == 0) {
            Padding::Zero
        } else if area.iter().all(|&b| b == 0xFF) {
            Padding::Ones
        } else {
            Padding::Mixed
        }
    }

    /// A word for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Padding::Zero => "zero",
            Padding::Ones => "ones",
            Padding::Mixed => "mixed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_matches_the_documented_bytes() {
        let mut buf = [0u8; 16];
        Header::new(512).pack(&mut buf);
        assert_eq!(&buf[0..4], &[0x72, 0x52, 0x69, 0x4D]);
        assert_eq!(&buf[4..8], &[2, 0, 0, 0]);
        assert_eq!(&buf[8..16], &[0, 2, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Header::unpack(&buf).unwrap(), Header::new(512));
        let odd = Header {
            magic: 0x0102_0304,
            version: 0x0506_0708,
            nr_regions: 0x090A_0B0C_0D0E_0F10,
        };
        let mut buf = [0xEEu8; 20];
        odd.pack(&mut buf);
        assert_eq!(
            buf[..16],
            [4, 3, 2, 1, 8, 7, 6, 5, 16, 15, 14, 13, 12, 11, 10, 9]
        );
        assert_eq!(buf[16..], [0xEE; 4]);
        assert_eq!(Header::unpack(&buf).unwrap(), odd);
    }

    #[test]
    fn a_short_buffer_is_a_truncated_header() {
        for len in [0, 4, 15] {
            assert!(matches!(
                Header::unpack(&vec![0u8; len]),
                Err(LogError::Truncated {
                    what: "log header",
                    need: 16,
                    size
                }) if size == len as u64
            ));
        }
    }

    #[test]
    fn nr_regions_is_interpreted() {
        assert_eq!(Header::new(0).regions(), NrRegions::Count(0));
        assert_eq!(
            Header::new(MAX_REGIONS).regions(),
            NrRegions::Count(MAX_REGIONS)
        );
        assert_eq!(Header::new(1 << 32).regions(), NrRegions::Invalid(1 << 32));
        assert_eq!(Header::new(u64::MAX).regions(), NrRegions::LvmInitialised);
    }

    #[test]
    fn magic_and_version_are_checked() {
        let mut h = Header::new(8);
        assert!(h.check_magic().is_ok() && h.check_version().is_ok());
        h.version = 1;
        assert!(h.check_version().is_ok());
        h.version = 3;
        assert!(matches!(
            h.check_version(),
            Err(LogError::BadVersion { found: 3 })
        ));
        h.magic = 0;
        assert!(matches!(
            h.check_magic(),
            Err(LogError::BadMagic { found: 0 })
        ));
    }

    #[test]
    fn padding_is_classified() {
        let mut buf = vec![0u8; 1024];
        assert_eq!(Padding::of(&buf), Padding::Zero);
        buf[16..].fill(0xFF);
        assert_eq!(Padding::of(&buf), Padding::Ones);
        buf[500] = 1;
        assert_eq!(Padding::of(&buf), Padding::Mixed);
    }
}
