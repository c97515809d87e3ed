//! Sizes of the on-disk log and the region <-> sector arithmetic of the mirror.

use crate::log::error::GEOMETRY_SOURCE;
use crate::log::LogError;

/// Bytes per sector: every length in a mirror table is in 512-byte sectors.
pub const SECTOR_SIZE: u64 = 512;

/// Byte offset of the clean bitmap (two sectors after the header's start).
pub const BITMAP_OFFSET: u64 = BITMAP_START as u64;

/// [`BITMAP_OFFSET`] as an index into a log's bytes in memory.
pub const BITMAP_START: usize = 1024;

/// The logical block size assumed when the device's is unknown (regular files).
pub const DEFAULT_LOGICAL_BLOCK_SIZE: u32 = 512;

/// The largest region count the kernel accepts (`region_count <= UINT_MAX`).
pub const MAX_REGIONS: u64 = u32::MAX as u64;

/// Bytes the kernel allocates for the clean bitmap of `nr_regions` regions: rounded up to
/// whole 64-bit words (`BITS_PER_LONG` on 64-bit kernels). 32-bit kernels round to 32 bits
/// instead, which is why readers go by `nr_regions`, never by this rounding.
pub fn bitset_bytes(nr_regions: u64) -> u64 {
    nr_regions.div_ceil(64) * 8
}

/// Bytes of the bitmap that actually hold the bits of `nr_regions` regions.
pub fn bitmap_bytes_used(nr_regions: u64) -> u64 {
    nr_regions.div_ceil(8)
}

/// Bytes the kernel reads and writes in one I/O from offset 0: header area, bitmap, rounded
/// up to the log device's logical block size.
pub fn buf_size(nr_regions: u64, logical_block_size: u32) -> u64 {
    (BITMAP_OFFSET + bitset_bytes(nr_regions))
        .next_multiple_of(u64::from(logical_block_size.max(1)))
}

/// Checks a logical block size given by the user or the device.
pub fn check_logical_block_size(lbs: u32) -> Result<u32, LogError> {
    if lbs < 512 || !lbs.is_power_of_two() || lbs > 65536 {
        return Err(LogError::Geometry(format!(
            "logical block size {lbs} is not a power of two between 512 and 65536"
        )));
    }
    Ok(lbs)
}

/// The part of a mirror table the log does not record: region size and target length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    region_size: u64,
    length: u64,
}

impl Geometry {
    /// The geometry the operator gave, if any: a region size and a length go together (a
    /// region size alone would label ranges with sectors nothing checked, since a region
    /// count fits many region sizes, each with another length).
    pub fn given(
        region_size: Option<u64>,
        length: Option<u64>,
    ) -> Result<Option<Geometry>, LogError> {
        match (region_size, length) {
            (Some(rs), Some(len)) => Geometry::new(rs, len).map(Some),
            (None, None) => Ok(None),
            _ => Err(LogError::Geometry(format!(
                "the region size and the length go together; {GEOMETRY_SOURCE}"
            ))),
        }
    }

    /// A mirror of `length` sectors cut into regions of `region_size` sectors, checked the
    /// way the kernel checks its table: power of two, at least 2, at most the length, and no
    /// more than 2^32 - 1 regions.
    pub fn new(region_size: u64, length: u64) -> Result<Geometry, LogError> {
        if region_size < 2 || !region_size.is_power_of_two() || region_size > u64::from(u32::MAX) {
            return Err(LogError::Geometry(format!(
                "region size {region_size} is not a power of two between 2 and 2^31 sectors"
            )));
        }
        if length == 0 {
            return Err(LogError::Geometry("mirror length is 0 sectors".into()));
        }
        if region_size > length {
            return Err(LogError::Geometry(format!(
                "region size {region_size} is larger than the mirror length {length}"
            )));
        }
        let g = Geometry {
            region_size,
            length,
        };
        if g.region_count() > MAX_REGIONS {
            return Err(LogError::Geometry(format!(
                "{} regions of {region_size} sectors: more than the kernel's limit of 2^32 - 1",
                g.region_count()
            )));
        }
        Ok(g)
    }

    /// Region size in sectors.
    pub fn region_size(&self) -> u64 {
        self.region_size
    }

    /// Mirror length in sectors.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// `ceil(length / region_size)`: the last region may be short.
    pub fn region_count(&self) -> u64 {
        self.length.div_ceil(self.region_size)
    }

    /// The mirror sectors of region `r`, end exclusive; the last region stops at the length.
    pub fn region_sectors(&self, r: u64) -> std::ops::Range<u64> {
        let begin = r.saturating_mul(self.region_size).min(self.length);
        let end = r
            .saturating_add(1)
            .saturating_mul(self.region_size)
            .min(self.length);
        begin..end
    }

    /// The sectors covered by regions `regions` (end exclusive), clipped to the length.
    pub fn range_sectors(&self, regions: &std::ops::Range<u64>) -> std::ops::Range<u64> {
        let begin = regions
            .start
            .saturating_mul(self.region_size)
            .min(self.length);
        let end = regions
            .end
            .saturating_mul(self.region_size)
            .min(self.length);
        begin..end
    }

    /// The region holding mirror sector `sector`.
    pub fn region_of_sector(&self, sector: u64) -> u64 {
        sector >> self.region_size.trailing_zeros()
    }
}

/// Checks that the header's `nr_regions` is the region count of the mirror `geometry`
/// describes: a wrong region size or length would make a repair copy, compare or mark the
/// wrong byte ranges. Both come from the operator (the mirror's table): the log and the legs
/// alone cannot tell which of them is wrong, so the refusal suggests no value.
pub fn check_region_count(nr_regions: u64, geometry: &Geometry) -> Result<(), LogError> {
    if geometry.region_count() == nr_regions {
        return Ok(());
    }
    Err(LogError::RegionCountMismatch {
        header: nr_regions,
        mirror: geometry.region_count(),
        region_size: geometry.region_size(),
        length: geometry.length(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_spec_examples() {
        // 1,000 regions: 128 bytes of bits; 1,536 bytes with 512-byte sectors, 4,096 with 4K.
        assert_eq!(bitset_bytes(1000), 128);
        assert_eq!(buf_size(1000, 512), 1536);
        assert_eq!(buf_size(1000, 4096), 4096);
        // 1 TiB in 512 KiB regions.
        assert_eq!(bitset_bytes(2_097_152), 262_144);
        assert_eq!(buf_size(2_097_152, 512), 263_168);
        assert_eq!(bitset_bytes(0), 0);
        assert_eq!(buf_size(0, 512), 1024);
        assert_eq!(bitset_bytes(1), 8);
        assert_eq!(bitmap_bytes_used(1), 1);
        assert_eq!(bitmap_bytes_used(9), 2);
        // 8192 regions: the bitmap fills exactly the two sectors after the header area.
        assert_eq!(buf_size(8192, 512), 2048);
    }

    #[test]
    fn regions_map_to_sectors_and_back() {
        let g = Geometry::new(128, 65_500).unwrap();
        assert_eq!(g.region_count(), 512);
        assert_eq!(g.region_sectors(0), 0..128);
        assert_eq!(g.region_sectors(511), 65_408..65_500);
        assert_eq!(g.region_of_sector(65_499), 511);
        assert_eq!(g.region_of_sector(128), 1);
        assert_eq!(g.range_sectors(&(48..64)), 6144..8192);
        assert_eq!(g.range_sectors(&(500..512)), 64_000..65_500);
    }

    #[test]
    fn the_kernel_table_checks_are_applied() {
        assert!(Geometry::new(3, 100).is_err());
        assert!(Geometry::new(1, 100).is_err());
        assert!(Geometry::new(256, 128).is_err());
        assert!(Geometry::new(2, 0).is_err());
        assert!(Geometry::new(2, 2 * MAX_REGIONS + 2).is_err());
        assert!(Geometry::new(2, 2 * MAX_REGIONS).is_ok());
        assert!(check_logical_block_size(4096).is_ok());
        assert!(check_logical_block_size(1000).is_err());
    }

    #[test]
    fn a_region_count_that_disagrees_is_refused_without_a_guess() {
        // 512 regions: 128 x 65536 fits, and so would 256 x 131072; only the table knows.
        assert!(check_region_count(512, &Geometry::new(128, 65_536).unwrap()).is_ok());
        assert!(check_region_count(512, &Geometry::new(256, 131_072).unwrap()).is_ok());
        assert!(check_region_count(512, &Geometry::new(128, 65_409).unwrap()).is_ok());
        match check_region_count(512, &Geometry::new(256, 65_536).unwrap()) {
            Err(e @ LogError::RegionCountMismatch { mirror: 256, .. }) => {
                let m = e.to_string();
                assert!(!m.contains("likely"), "{m}");
                assert!(m.contains("dmsetup table"), "{m}");
            }
            other => panic!("{other:?}"),
        }
    }
}
