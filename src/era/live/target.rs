//! What device-mapper says about an era target: its table line and its status line.

use crate::dm::{single_target, DevId, TargetLine};

/// An era target's table: `era <metadata dev> <origin dev> <block size>`, as the kernel
/// prints it (devices as `MAJOR:MINOR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraTable {
    /// Length of the target in sectors: the size of the origin it exposes.
    pub length: u64,
    /// The metadata device.
    pub metadata: DevId,
    /// The origin device.
    pub origin: DevId,
    /// Origin block size in sectors.
    pub block_size: u32,
}

impl EraTable {
    /// Reads the table of a device: exactly one `era` target, starting at sector 0 (the
    /// target tracks blocks by absolute sector, so it is only meaningful there).
    pub fn from_lines(lines: &[TargetLine]) -> Result<EraTable, String> {
        let line = single_target(lines, "era")?;
        let bad = || format!("cannot read the era table line '{}'", line.params);
        let f: Vec<&str> = line.params.split_whitespace().collect();
        let [meta, origin, bs] = f.as_slice() else {
            return Err(bad());
        };
        let block_size: u32 = bs.parse().map_err(|_| bad())?;
        if block_size == 0 {
            return Err(bad());
        }
        // Lists are written in bytes up to the end of the last (partial) block: that end
        // must be a number. No block device is that large, but the length is read, not
        // known.
        let blocks = line.length.div_ceil(block_size as u64);
        if blocks.checked_mul(block_size as u64 * 512).is_none() {
            return Err(format!(
                "the era target is {} sectors long: its last block of {block_size} sectors \
                 ends past 2^64 bytes",
                line.length
            ));
        }
        Ok(EraTable {
            length: line.length,
            metadata: DevId::parse(meta).ok_or_else(bad)?,
            origin: DevId::parse(origin).ok_or_else(bad)?,
            block_size,
        })
    }

    /// Origin blocks the target tracks: the last one may be partial.
    pub fn nr_blocks(&self) -> u64 {
        self.length.div_ceil(self.block_size as u64)
    }
}

/// An era target's status: `<metadata block size> <used>/<total> <current era> <held root|->`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EraStatus {
    /// Metadata blocks in use.
    pub used: u64,
    /// Metadata blocks on the device.
    pub total: u64,
    /// The current era.
    pub era: u32,
    /// The block of the held metadata snapshot, if one is held.
    pub held: Option<u64>,
}

impl EraStatus {
    /// Reads the status of the single era target. The kernel prints `Error` when it could not
    /// read its own metadata.
    pub fn from_lines(lines: &[TargetLine]) -> Result<EraStatus, String> {
        let [line] = lines else {
            return Err(format!("expected one status line, got {}", lines.len()));
        };
        if line.target_type != "era" {
            return Err(format!("the target is '{}', not 'era'", line.target_type));
        }
        let bad = || format!("cannot read the era status line '{}'", line.params);
        if line.params.trim() == "Error" {
            return Err("the era target reports an error reading its metadata".into());
        }
        let f: Vec<&str> = line.params.split_whitespace().collect();
        let [_, space, era, held] = f.as_slice() else {
            return Err(bad());
        };
        let (used, total) = space.split_once('/').ok_or_else(bad)?;
        Ok(EraStatus {
            used: used.parse().map_err(|_| bad())?,
            total: total.parse().map_err(|_| bad())?,
            era: era.parse().map_err(|_| bad())?,
            held: match *held {
                "-" => None,
                r => Some(r.parse().map_err(|_| bad())?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(start: u64, length: u64, ty: &str, params: &str) -> TargetLine {
        TargetLine {
            start,
            length,
            target_type: ty.into(),
            params: params.into(),
        }
    }

    /// The table line of an era target with parameters `params`, parsed.
    fn table(params: &str) -> Result<(), String> {
        EraTable::from_lines(&[line(0, 8, "era", params)]).map(drop)
    }

    /// The status line of an era target, `params` after its type, parsed.
    fn status(params: &str) -> Result<(), String> {
        EraStatus::from_lines(&[line(0, 8, "era", params)]).map(drop)
    }

    #[test]
    fn unreadable_parameters_are_refused() {
        type Parse = fn(&str) -> Result<(), String>;
        let cases: [(Parse, &str, &str); 10] = [
            (table, "253:0 253:16", "cannot read"),
            (table, "253:0 253:16 x", "cannot read"),
            (table, "253:0 253:16 0", "cannot read"),
            (table, "/dev/vda 253:16 8", "cannot read"),
            (table, "253:0 253:16 8 9", "cannot read"),
            (status, "8 15/1024 3", ""),
            (status, "8 15-1024 3 -", ""),
            (status, "8 15/1024 x -", ""),
            (status, "8 a/1024 3 -", ""),
            (status, "8 1/2 3 4x", ""),
        ];
        for (parse, params, words) in cases {
            let e = parse(params).expect_err(params);
            assert!(e.contains(words), "'{params}': {e}");
        }
    }

    #[test]
    fn an_era_table_line_gives_devices_block_size_and_length() {
        let t = EraTable::from_lines(&[line(0, 24010, "era", "253:0 253:16 24")]).unwrap();
        assert_eq!(t.metadata.to_string(), "253:0");
        assert_eq!(t.origin.to_string(), "253:16");
        assert_eq!((t.length, t.block_size), (24010, 24));
        // 1000 whole blocks and a partial one.
        assert_eq!(t.nr_blocks(), 1001);
    }

    #[test]
    fn tables_that_are_not_one_era_target_are_refused_by_name() {
        let e = EraTable::from_lines(&[line(0, 8, "linear", "253:0 0")]).unwrap_err();
        assert_eq!(e, "the target is 'linear', not 'era'");
        let e = EraTable::from_lines(&[]).unwrap_err();
        assert!(e.contains("no table"), "{e}");
        let two = [
            line(0, 8, "era", "253:0 253:16 8"),
            line(8, 8, "linear", "253:0 0"),
        ];
        let e = EraTable::from_lines(&two).unwrap_err();
        assert!(e.contains("2 targets (era, linear)"), "{e}");
        let e = EraTable::from_lines(&[line(8, 8, "era", "253:0 253:16 8")]).unwrap_err();
        assert!(e.contains("starts at sector 8"), "{e}");
        // The largest length whose last block still ends below 2^64 bytes, and the next.
        let fits = u64::MAX / 512 / 8 * 8;
        assert!(EraTable::from_lines(&[line(0, fits, "era", "253:0 253:16 8")]).is_ok());
        let e = EraTable::from_lines(&[line(0, fits + 1, "era", "253:0 253:16 8")]).unwrap_err();
        assert!(e.contains("ends past 2^64 bytes"), "{e}");
    }

    #[test]
    fn status_lines_with_and_without_a_held_snapshot() {
        let s = EraStatus::from_lines(&[line(0, 8, "era", "8 15/1024 3 412")]).unwrap();
        assert_eq!(
            s,
            EraStatus {
                used: 15,
                total: 1024,
                era: 3,
                held: Some(412)
            }
        );
        let s = EraStatus::from_lines(&[line(0, 8, "era", "8 2144/32768 1 -")]).unwrap();
        assert_eq!((s.used, s.total, s.era, s.held), (2144, 32768, 1, None));
    }

    #[test]
    fn broken_status_lines_are_errors() {
        let e = EraStatus::from_lines(&[line(0, 8, "era", "Error")]).unwrap_err();
        assert!(e.contains("reports an error"), "{e}");
        assert!(EraStatus::from_lines(&[line(0, 8, "linear", "")]).is_err());
        assert!(EraStatus::from_lines(&[]).is_err());
    }
}
