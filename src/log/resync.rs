//! Offline resynchronisation and verification of mirror legs, region by region, the way the
//! kernel would do it at the next activation: leg 0 (the default mirror) is the source.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::pdata::io::{same_file, AlignedBuf, ByteIo, FileIo, OpenMode};

use super::device::open;
use super::error::LogError;
use super::format::geometry::{Geometry, SECTOR_SIZE};

/// Bytes copied or compared per I/O: large regions are handled in pieces of this size (and
/// a backup keeps a leg's bytes in records of at most this size).
pub const CHUNK: u64 = CHUNK_BYTES as u64;

/// [`CHUNK`] as the length of a buffer.
const CHUNK_BYTES: usize = 1 << 20;

/// A leg as given on the command line: `PATH[:OFFSET]`, offset in sectors as in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegSpec {
    /// Device or image file.
    pub path: PathBuf,
    /// Start of the mirror on this leg, in sectors.
    pub offset: u64,
}

impl LegSpec {
    /// Parses `PATH[:OFFSET]`. A colon followed by anything but digits is part of the path.
    pub fn parse(s: &str) -> Result<LegSpec, LogError> {
        if let Some((p, o)) = s.rsplit_once(':') {
            if !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit()) {
                let offset = o
                    .parse()
                    .map_err(|_| LogError::Invalid(format!("leg {s}: offset {o} is too large")))?;
                if p.is_empty() {
                    return Err(LogError::Invalid(format!("leg {s}: empty path")));
                }
                return Ok(LegSpec {
                    path: PathBuf::from(p),
                    offset,
                });
            }
        }
        if s.is_empty() {
            return Err(LogError::Invalid("leg: empty path".into()));
        }
        Ok(LegSpec {
            path: PathBuf::from(s),
            offset: 0,
        })
    }
}

/// A leg opened by [`open_legs`]: its specification and its device.
pub struct OpenLeg {
    /// As given on the command line.
    pub spec: LegSpec,
    /// The device, opened `O_EXCL` if it is a block device.
    pub io: FileIo,
    name: String,
}

impl OpenLeg {
    /// The leg as [`Legs`] takes it, named by its path.
    pub fn as_leg(&self) -> Leg<'_> {
        Leg {
            name: &self.name,
            offset: self.spec.offset,
            io: &self.io,
        }
    }
}

/// Checks that the legs are distinct and distinct from the log, then opens them: leg 0
/// read-only, the others for writing when `write` is set. Block devices are opened
/// `O_EXCL`, so legs of an active mirror are refused. Paths are compared before anything is
/// opened, because an exclusive open of the same device twice would fail with a misleading
/// "busy".
pub fn open_legs(specs: &[LegSpec], log: &Path, write: bool) -> Result<Vec<OpenLeg>, LogError> {
    for (i, s) in specs.iter().enumerate() {
        if same_file(&s.path, log) {
            return Err(LogError::Leg {
                index: i,
                name: s.path.display().to_string(),
                message: "is the log itself".into(),
            });
        }
        for (j, t) in specs.iter().enumerate().take(i) {
            if same_file(&s.path, &t.path) {
                return Err(LogError::Leg {
                    index: i,
                    name: s.path.display().to_string(),
                    message: format!("is the same device as leg {j} ({})", t.path.display()),
                });
            }
        }
    }
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mode = if write && i > 0 {
                OpenMode::Write
            } else {
                OpenMode::ReadExclusive
            };
            let io = open(&s.path, mode).map_err(|e| LogError::Leg {
                index: i,
                name: s.path.display().to_string(),
                message: e.to_string(),
            })?;
            Ok(OpenLeg {
                spec: s.clone(),
                io,
                name: s.path.display().to_string(),
            })
        })
        .collect()
}

/// A piece of a leg that a resync is about to overwrite.
pub struct Piece<'d> {
    /// The leg (never 0).
    pub leg: usize,
    /// Byte offset on the leg.
    pub offset: u64,
    /// The bytes it holds now.
    pub data: &'d [u8],
    /// crc32c of leg 0's bytes that the resync writes over them.
    pub new_crc: u32,
}

/// One mirror leg, on a device the caller opened.
#[derive(Clone, Copy)]
pub struct Leg<'a> {
    /// How messages name the leg (its path).
    pub name: &'a str,
    /// Start of the mirror on this leg, in sectors.
    pub offset: u64,
    /// The device: read for leg 0, written for the others by a resync.
    pub io: &'a dyn ByteIo,
}

/// The legs of a mirror, in table order (leg 0 is the default mirror, the source of a
/// resync), checked against the mirror's geometry.
pub struct Legs<'a> {
    legs: Vec<Leg<'a>>,
    geometry: Geometry,
}

impl<'a> Legs<'a> {
    /// Checks the legs: at least two, each large enough for `offset + length` sectors.
    pub fn new(legs: &[Leg<'a>], geometry: Geometry) -> Result<Legs<'a>, LogError> {
        if legs.len() < 2 {
            return Err(LogError::Invalid(format!(
                "a mirror has at least 2 legs; {} given",
                legs.len()
            )));
        }
        for (i, leg) in legs.iter().enumerate() {
            let need = leg
                .offset
                .checked_add(geometry.length())
                .and_then(|n| n.checked_mul(SECTOR_SIZE))
                .ok_or_else(|| LogError::Leg {
                    index: i,
                    name: leg.name.to_string(),
                    message: "offset + length overflow".into(),
                })?;
            let size = leg.io.size_bytes();
            if size < need {
                return Err(LogError::Leg {
                    index: i,
                    name: leg.name.to_string(),
                    message: format!(
                        "holds {size} bytes, but the mirror needs {need} (offset {} + length {} \
                         sectors)",
                        leg.offset,
                        geometry.length()
                    ),
                });
            }
        }
        Ok(Legs {
            legs: legs.to_vec(),
            geometry,
        })
    }

    /// Number of legs, leg 0 included.
    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    /// The mirror geometry the legs were checked against.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Bytes of mirror data in the regions `dirty`: what a resync copies from leg 0 (to
    /// each other leg) and what a verification reads per leg.
    pub fn dirty_bytes(&self, dirty: &[Range<u64>]) -> u64 {
        dirty
            .iter()
            .map(|r| {
                let s = self.geometry.range_sectors(r);
                (s.end - s.start) * SECTOR_SIZE
            })
            .sum()
    }

    fn io_error(&self, i: usize, doing: &str, e: std::io::Error) -> LogError {
        LogError::Leg {
            index: i,
            name: self.legs[i].name.to_string(),
            message: format!("{doing}: {e}"),
        }
    }

    /// Runs `f` on every chunk of region `r`: (byte offset within the mirror, length).
    fn chunks(&self, r: u64) -> impl Iterator<Item = (u64, u64)> {
        let s = self.geometry.region_sectors(r);
        let (begin, end) = (s.start * SECTOR_SIZE, s.end * SECTOR_SIZE);
        (begin..end)
            .step_by(CHUNK_BYTES)
            .map(move |off| (off, CHUNK.min(end - off)))
    }

    fn at(&self, i: usize, off: u64) -> u64 {
        self.legs[i].offset * SECTOR_SIZE + off
    }

    /// Reads the `len` bytes at `off` in the mirror from leg `i` into the start of `buf`.
    fn read<'b>(
        &self,
        i: usize,
        off: u64,
        buf: &'b mut AlignedBuf,
        len: u64,
    ) -> Result<&'b mut [u8], LogError> {
        let data = &mut buf.as_mut_slice()[..crate::cast::index(len)];
        self.legs[i]
            .io
            .read_at(data, self.at(i, off))
            .map_err(|e| self.io_error(i, "reading", e))?;
        Ok(data)
    }

    /// How messages name leg `i`: its index and path.
    pub fn name(&self, i: usize) -> String {
        format!("leg {i} {}", self.legs[i].name)
    }

    /// Every piece a resync of `dirty` copies, in order: (byte offset within the mirror,
    /// length).
    fn pieces<'s>(&'s self, dirty: &'s [Range<u64>]) -> impl Iterator<Item = (u64, u64)> + 's {
        dirty
            .iter()
            .flat_map(|d| d.clone())
            .flat_map(move |r| self.chunks(r))
    }

    /// Number of pieces a resync of `dirty` writes to each leg other than leg 0.
    pub fn piece_count(&self, dirty: &[Range<u64>]) -> u64 {
        self.pieces(dirty).count() as u64
    }

    /// Hands `keep` every piece a resync of `dirty` overwrites, before it does. Nothing is
    /// written.
    pub fn before_resync(
        &self,
        dirty: &[Range<u64>],
        keep: &mut dyn FnMut(Piece<'_>) -> Result<(), LogError>,
    ) -> Result<(), LogError> {
        let mut buf = AlignedBuf::zeroed(CHUNK_BYTES);
        for (off, len) in self.pieces(dirty) {
            let data = self.read(0, off, &mut buf, len)?;
            let new_crc = crc32c::crc32c(data);
            for i in 1..self.legs.len() {
                let data = self.read(i, off, &mut buf, len)?;
                keep(Piece {
                    leg: i,
                    offset: self.at(i, off),
                    data,
                    new_crc,
                })?;
            }
        }
        Ok(())
    }

    /// Copies the regions `dirty` from leg 0 to every other leg (the last region only up to
    /// the mirror's length) and makes the legs durable; only then may the caller mark those
    /// regions clean. Other regions and leg 0 are never written. `progress` gets the bytes
    /// read from leg 0 as they are copied.
    pub fn resync(
        &self,
        dirty: &[Range<u64>],
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), LogError> {
        let mut buf = AlignedBuf::zeroed(CHUNK_BYTES);
        for r in dirty.iter().flat_map(|d| d.clone()) {
            for (off, len) in self.chunks(r) {
                let data = self.read(0, off, &mut buf, len)?;
                for i in 1..self.legs.len() {
                    self.legs[i]
                        .io
                        .write_at(data, self.at(i, off))
                        .map_err(|e| self.io_error(i, "writing", e))?;
                }
                progress(len);
            }
        }
        for i in 1..self.legs.len() {
            self.legs[i]
                .io
                .sync()
                .map_err(|e| self.io_error(i, "flushing", e))?;
        }
        Ok(())
    }

    /// Compares the regions `dirty` across all legs. Returns those where every leg holds
    /// the same bytes (to be marked clean) and those that differ (left dirty), as ascending
    /// ranges. No leg is written. `progress` gets the bytes compared per leg.
    pub fn verify(
        &self,
        dirty: &[Range<u64>],
        progress: &mut dyn FnMut(u64),
    ) -> Result<Verified, LogError> {
        let mut found = Verified::default();
        let mut a = AlignedBuf::zeroed(CHUNK_BYTES);
        let mut b = AlignedBuf::zeroed(CHUNK_BYTES);
        for r in dirty.iter().flat_map(|d| d.clone()) {
            let mut same = true;
            for (off, len) in self.chunks(r) {
                if !same {
                    progress(len);
                    continue;
                }
                let x = self.read(0, off, &mut a, len)?;
                for i in 1..self.legs.len() {
                    let y = self.read(i, off, &mut b, len)?;
                    if x != y {
                        same = false;
                        break;
                    }
                }
                progress(len);
            }
            let to = if same {
                &mut found.same
            } else {
                &mut found.differ
            };
            match to.last_mut() {
                Some(last) if last.end == r => last.end = r + 1,
                _ => to.push(r..r + 1),
            }
        }
        Ok(found)
    }
}

/// What a verification found among the dirty regions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    /// Regions identical on every leg.
    pub same: Vec<Range<u64>>,
    /// Regions that differ between legs.
    pub differ: Vec<Range<u64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leg_specs_take_an_optional_sector_offset() {
        assert_eq!(
            LegSpec::parse("/dev/sdb:2048").unwrap(),
            LegSpec {
                path: "/dev/sdb".into(),
                offset: 2048
            }
        );
        assert_eq!(LegSpec::parse("/dev/sdb").unwrap().offset, 0);
        assert_eq!(LegSpec::parse("a:b").unwrap().path, PathBuf::from("a:b"));
        assert!(LegSpec::parse(":5").is_err());
        assert!(LegSpec::parse("x:99999999999999999999999").is_err());
    }

    #[test]
    // Lists of one range of regions are values under test, not a mistaken `vec![a; n]`.
    #[allow(clippy::single_range_in_vec_init)]
    fn resync_copies_dirty_regions_only_and_verify_finds_differences() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(&log, [0u8; 2048]).unwrap();
        let l0 = dir.path().join("l0");
        let l1 = dir.path().join("l1");
        // 4 regions of 8 sectors; leg 1 starts 16 sectors in.
        let a: Vec<u8> = (0..16384u32).map(|i| (i % 251) as u8).collect();
        let mut b = vec![0xEEu8; 8192];
        b.extend_from_slice(&a);
        std::fs::write(&l0, &a).unwrap();
        std::fs::write(&l1, &b).unwrap();
        let g = Geometry::new(8, 32).unwrap();
        let specs = [
            LegSpec::parse(l0.to_str().unwrap()).unwrap(),
            LegSpec {
                path: l1.clone(),
                offset: 16,
            },
        ];
        // Make regions 1 and 3 differ on leg 1.
        let mut b2 = b.clone();
        b2[8192 + 4096] ^= 1;
        b2[8192 + 3 * 4096 + 100] ^= 1;
        std::fs::write(&l1, &b2).unwrap();
        let opened = open_legs(&specs, &log, false).unwrap();
        let refs: Vec<Leg> = opened.iter().map(OpenLeg::as_leg).collect();
        let legs = Legs::new(&refs, g).unwrap();
        let found = legs.verify(&[0..2], &mut |_| {}).unwrap();
        assert_eq!(
            found,
            Verified {
                same: vec![0..1],
                differ: vec![1..2]
            }
        );
        drop(legs);
        drop(refs);
        // The legs read above are closed (and their shared locks gone) before they are
        // opened for writing, as a tool's run does.
        drop(opened);
        let opened = open_legs(&specs, &log, true).unwrap();
        let refs: Vec<Leg> = opened.iter().map(OpenLeg::as_leg).collect();
        let legs = Legs::new(&refs, g).unwrap();
        let mut copied = 0;
        legs.resync(&found.differ, &mut |n| copied += n).unwrap();
        assert_eq!(copied, 4096);
        let after = std::fs::read(&l1).unwrap();
        assert_eq!(&after[8192 + 4096..8192 + 8192], &a[4096..8192]);
        assert_ne!(after[8192 + 3 * 4096 + 100], a[3 * 4096 + 100]);
        assert_eq!(std::fs::read(&l0).unwrap(), a);
        assert!(Legs::new(&refs[..1], g).is_err());
        assert!(Legs::new(&refs, Geometry::new(8, 64).unwrap()).is_err());
        let same = [specs[0].clone(), specs[0].clone()];
        assert!(open_legs(&same, &log, false).is_err());
        let with_log = [
            specs[0].clone(),
            LegSpec::parse(log.to_str().unwrap()).unwrap(),
        ];
        assert!(open_legs(&with_log, &log, false).is_err());
    }
}
