//! What a repair stopped by a signal left behind. A stopped writer's next write is refused
//! (`crate::interrupt`), so the writes that completed say which state the devices are in:
//! counting them on the log and on the legs lets the tool name that one state instead of
//! listing the possible ones.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::pdata::io::ByteIo;

/// A device whose completed writes are counted.
pub struct Counted<'a> {
    inner: &'a dyn ByteIo,
    writes: AtomicU64,
}

impl<'a> Counted<'a> {
    /// Counts the writes to `inner`.
    pub fn new(inner: &'a dyn ByteIo) -> Counted<'a> {
        Counted {
            inner,
            writes: AtomicU64::new(0),
        }
    }

    /// Writes that completed so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }
}

impl ByteIo for Counted<'_> {
    fn size_bytes(&self) -> u64 {
        self.inner.size_bytes()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_at(buf, offset)?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        self.inner.sync()
    }
}

/// The state a repair that failed after `log_writes` completed writes of the log and
/// `leg_writes` of the legs left (docs/dirty-log-format.md §9.3, §9.4). A repair writes the
/// log last, in one write or, when the header changes, two: so a failed repair that wrote
/// the log once stopped between the two, with the new bits under the old header.
pub fn unfinished_repair(log_writes: u64, leg_writes: u64) -> String {
    let state = match (log_writes, leg_writes) {
        (0, 0) => "nothing was written: the log is unchanged".to_string(),
        (0, _) => "the log is unchanged; dirty regions were copied to the legs, all or part \
            (they stay dirty, and a new run copies them again)"
            .to_string(),
        _ => "the log holds the new bits under its old header (the first of the two writes \
            a header change takes; the old header decides which bits the kernel trusts)"
            .to_string(),
    };
    format!("{state}; run the repair again")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::format::header::Header;
    use crate::log::resync::Leg;
    use crate::log::run::{repair, Mode, NoProgress, RepairOptions};
    use crate::pdata::fault_io::{FaultIo, Inject};
    use crate::pdata::io::MemIo;

    fn options(mode: Mode<'_>, force: bool) -> RepairOptions<'_> {
        RepairOptions {
            mode,
            nr_regions: None,
            region_size: Some(8),
            length: Some(16 * 8),
            logical_block_size: 512,
            dry_run: false,
            force,
            backup: None,
        }
    }

    #[test]
    fn a_repair_stopped_between_its_two_log_writes_says_so() {
        // No magic: --force-resync --force writes the new header, so the log takes two
        // writes; the second never happens.
        let mut raw = vec![0u8; 1536];
        Header::new(16).pack(&mut raw);
        raw[..4].fill(0);
        raw[1024..1026].fill(0xFF);
        let log = FaultIo::new(MemIo::from_bytes(raw.clone()), Inject::StopAt(1));
        let counted = Counted::new(&log);
        let opts = options(Mode::ForceResync, true);
        assert!(repair(&counted, &opts, &mut NoProgress, &mut Vec::new()).is_err());
        let said = unfinished_repair(counted.writes(), 0);
        let now = log.into_inner().into_bytes();
        // What the message says is what the log holds: the old header over the new bits.
        assert!(said.starts_with("the log holds the new bits under its old header"));
        assert_eq!(now[..16], raw[..16]);
        assert_eq!(now[1024..1026], [0, 0]);
    }

    #[test]
    fn a_resync_stopped_on_the_legs_says_the_log_is_unchanged() {
        let mut raw = vec![0u8; 1536];
        Header::new(16).pack(&mut raw);
        raw[1024] = 0x0F;
        let log = MemIo::from_bytes(raw.clone());
        let leg0 = MemIo::from_bytes(vec![1; 16 * 8 * 512]);
        let leg1 = FaultIo::new(MemIo::from_bytes(vec![2; 16 * 8 * 512]), Inject::StopAt(1));
        let counted_leg = Counted::new(&leg1);
        let counted_log = Counted::new(&log);
        let legs = [
            Leg {
                name: "leg0",
                offset: 0,
                io: &leg0,
            },
            Leg {
                name: "leg1",
                offset: 0,
                io: &counted_leg,
            },
        ];
        let opts = options(Mode::Resync(&legs), false);
        assert!(repair(&counted_log, &opts, &mut NoProgress, &mut Vec::new()).is_err());
        let said = unfinished_repair(counted_log.writes(), counted_leg.writes());
        assert!(said.starts_with("the log is unchanged; dirty regions were copied"));
        assert_eq!(counted_leg.writes(), 1);
        assert_eq!(log.into_bytes(), raw);
    }
}
