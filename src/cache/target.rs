//! What device-mapper says about a cache target: its table line and its status line
//! (cache-metadata.md §9).

use std::fmt;

use crate::dm::{single_target, DevId, TargetLine};

/// How a cache target handles I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// Writes go to the cache and are written back later.
    Writeback,
    /// Writes go to both.
    Writethrough,
    /// Everything goes to the origin; a write to a cached block invalidates it. The only
    /// mode in which the kernel takes `invalidate_cblocks`.
    Passthrough,
}

impl IoMode {
    fn parse(word: &str) -> Option<IoMode> {
        match word.to_ascii_lowercase().as_str() {
            "writeback" => Some(IoMode::Writeback),
            "writethrough" => Some(IoMode::Writethrough),
            "passthrough" => Some(IoMode::Passthrough),
            _ => None,
        }
    }
}

impl fmt::Display for IoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoMode::Writeback => "writeback",
            IoMode::Writethrough => "writethrough",
            IoMode::Passthrough => "passthrough",
        })
    }
}

/// A cache target's table: `cache <metadata dev> <cache dev> <origin dev> <block size>
/// <#features> <features>* <policy> <#policy args> <policy args>*`, devices as
/// `MAJOR:MINOR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTable {
    /// Length of the target in sectors.
    pub length: u64,
    /// The metadata device.
    pub metadata: DevId,
    /// The fast device holding the cached blocks.
    pub cache: DevId,
    /// The origin device.
    pub origin: DevId,
    /// Cache block size in sectors.
    pub block_size: u32,
    /// The io mode the table asks for (writeback when it names none).
    pub io_mode: IoMode,
}

impl CacheTable {
    /// Reads the table of a device: exactly one `cache` target, starting at sector 0 (its
    /// origin blocks are then the device's own sectors divided by the block size).
    pub fn from_lines(lines: &[TargetLine]) -> Result<CacheTable, String> {
        let line = single_target(lines, "cache")?;
        let bad = || format!("cannot read the cache table line '{}'", line.params);
        let f: Vec<&str> = line.params.split_whitespace().collect();
        let [meta, cache, origin, bs, n, rest @ ..] = f.as_slice() else {
            return Err(bad());
        };
        let block_size: u32 = bs.parse().map_err(|_| bad())?;
        let n: usize = n.parse().map_err(|_| bad())?;
        let features = rest.get(..n).ok_or_else(bad)?;
        let mut io_mode = IoMode::Writeback;
        for word in features {
            if let Some(mode) = IoMode::parse(word) {
                io_mode = mode;
            }
        }
        Ok(CacheTable {
            length: line.length,
            metadata: DevId::parse(meta).ok_or_else(bad)?,
            cache: DevId::parse(cache).ok_or_else(bad)?,
            origin: DevId::parse(origin).ok_or_else(bad)?,
            block_size,
            io_mode,
        })
    }
}

/// What a cache target's status line says, as far as invalidating blocks needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStatus {
    /// Cache block size in sectors.
    pub block_size: u32,
    /// Cache blocks holding an origin block.
    pub cached: u64,
    /// Cache blocks.
    pub cache_blocks: u64,
    /// Dirty cache blocks.
    pub dirty: u64,
    /// The io mode in force.
    pub io_mode: IoMode,
    /// The metadata is read-only (`ro`): the kernel takes no message.
    pub read_only: bool,
    /// The metadata is flagged `needs_check`.
    pub needs_check: bool,
}

impl CacheStatus {
    /// Reads the status of a device holding one cache target. A target that failed (`Fail`,
    /// `Error`) is an error naming it.
    pub fn from_lines(lines: &[TargetLine]) -> Result<CacheStatus, String> {
        let line = single_target(lines, "cache")?;
        let f: Vec<&str> = line.params.split_whitespace().collect();
        if let [word @ ("Fail" | "Error")] = f.as_slice() {
            // Nothing was invalidated: the metadata may still map cache blocks to blocks
            // written since the era, which a reloaded cache would serve again.
            return Err(format!(
                "the cache target reports '{word}': it has failed and takes no message (see \
                 the kernel log); its metadata may still map cache blocks to written blocks: \
                 do not use the cache in writeback or writethrough mode with it; check and \
                 repair the metadata, load the cache in passthrough mode and run again"
            ));
        }
        let bad = || format!("cannot read the cache status line '{}'", line.params);
        let num = |i: usize| -> Result<u64, String> {
            f.get(i).and_then(|w| w.parse().ok()).ok_or_else(bad)
        };
        let pair = |i: usize| -> Result<(u64, u64), String> {
            let (a, b) = f.get(i).and_then(|w| w.split_once('/')).ok_or_else(bad)?;
            Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
        };
        let block_size = u32::try_from(num(2)?).map_err(|_| bad())?;
        let (cached, cache_blocks) = pair(3)?;
        let dirty = num(10)?;
        let n_features = crate::cast::index(num(11)?);
        let features = f.get(12..12 + n_features).ok_or_else(bad)?;
        let io_mode = features
            .iter()
            .find_map(|w| IoMode::parse(w))
            .ok_or_else(bad)?;
        // The metadata mode and needs_check are the last two words, after the core and
        // policy arguments, whose number the line gives but which need not be read.
        let [.., mode, check] = f.as_slice() else {
            return Err(bad());
        };
        let read_only = match *mode {
            "rw" => false,
            "ro" => true,
            _ => return Err(bad()),
        };
        let needs_check = match *check {
            "-" => false,
            "needs_check" => true,
            _ => return Err(bad()),
        };
        Ok(CacheStatus {
            block_size,
            cached,
            cache_blocks,
            dirty,
            io_mode,
            read_only,
            needs_check,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ty: &str, params: &str) -> TargetLine {
        TargetLine {
            start: 0,
            length: 131072,
            target_type: ty.into(),
            params: params.into(),
        }
    }

    #[test]
    fn a_table_gives_its_devices_block_size_and_io_mode() {
        let t = CacheTable::from_lines(&[line(
            "cache",
            "254:1 254:2 254:3 128 2 metadata2 passthrough smq 0",
        )])
        .unwrap();
        assert_eq!(t.metadata, DevId::parse("254:1").unwrap());
        assert_eq!(t.cache, DevId::parse("254:2").unwrap());
        assert_eq!(t.origin, DevId::parse("254:3").unwrap());
        assert_eq!(
            (t.block_size, t.io_mode, t.length),
            (128, IoMode::Passthrough, 131072)
        );
        // No io mode named: writeback, the kernel's default; a policy argument that looks
        // like a mode is not a feature.
        let t =
            CacheTable::from_lines(&[line("cache", "254:1 254:2 254:3 64 0 smq 2 passthrough 1")])
                .unwrap();
        assert_eq!(t.io_mode, IoMode::Writeback);
    }

    #[test]
    fn tables_that_are_not_one_cache_target_at_sector_0_are_refused() {
        let e = CacheTable::from_lines(&[]).unwrap_err();
        assert!(e.contains("no table"), "{e}");
        let e = CacheTable::from_lines(&[line("linear", "254:1 0")]).unwrap_err();
        assert!(e.contains("'linear', not 'cache'"), "{e}");
        let two = [line("cache", ""), line("linear", "")];
        let e = CacheTable::from_lines(&two).unwrap_err();
        assert!(e.contains("2 targets (cache, linear)"), "{e}");
        let mut at = line("cache", "254:1 254:2 254:3 64 0 smq 0");
        at.start = 8;
        let e = CacheTable::from_lines(&[at]).unwrap_err();
        assert!(e.contains("starts at sector 8"), "{e}");
        for bad in [
            "254:1 254:2 254:3",
            "254:1 254:2 x 64 0 smq 0",
            "a b c 64 3 smq",
        ] {
            let e = CacheTable::from_lines(&[line("cache", bad)]).unwrap_err();
            assert!(e.contains("cannot read"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_status_gives_counts_mode_and_metadata_state() {
        // As the kernel prints it (cache-metadata.md §9), with its trailing space.
        let s = CacheStatus::from_lines(&[line(
            "cache",
            "8 27/4096 128 512/8192 1020 4405 310 95 0 512 12 1 writeback 2 \
             migration_threshold 2048 smq 0 rw - ",
        )])
        .unwrap();
        assert_eq!(
            s,
            CacheStatus {
                block_size: 128,
                cached: 512,
                cache_blocks: 8192,
                dirty: 12,
                io_mode: IoMode::Writeback,
                read_only: false,
                needs_check: false,
            }
        );
        let s = CacheStatus::from_lines(&[line(
            "cache",
            "8 27/4096 64 0/1024 0 0 0 0 0 0 0 2 metadata2 passthrough 2 \
             migration_threshold 2048 mq 10 random_threshold 0 sequential_threshold 0 \
             discard_promote_adjustment 0 read_promote_adjustment 0 \
             write_promote_adjustment 0 ro needs_check",
        )])
        .unwrap();
        assert_eq!(s.io_mode, IoMode::Passthrough);
        assert!(s.read_only && s.needs_check);
    }

    #[test]
    fn a_failed_or_unreadable_status_is_an_error() {
        let e = CacheStatus::from_lines(&[line("cache", "Fail")]).unwrap_err();
        assert!(e.contains("'Fail'"), "{e}");
        assert!(
            e.contains("load the cache in passthrough mode and run again"),
            "{e}"
        );
        for bad in [
            "8 27/4096 128 512/8192",
            "8 27/4096 128 512/8192 1 2 3 4 5 6 7 1 sideways 2 migration_threshold 2048 smq 0 rw -",
            "8 27/4096 128 512/8192 1 2 3 4 5 6 7 1 writeback 2 migration_threshold 2048 smq 0 rx -",
        ] {
            let e = CacheStatus::from_lines(&[line("cache", bad)]).unwrap_err();
            assert!(e.contains("cannot read"), "{bad}: {e}");
        }
    }
}
