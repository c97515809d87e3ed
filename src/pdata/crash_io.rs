//! A device that remembers every write and flush, for proving writers crash-safe: from the
//! recording it rebuilds every state a power cut could leave on a device with a volatile
//! write cache. The fault-injecting [`super::fault_io`] models a writer stopped before one of
//! its writes; this models what the device itself may lose.
//!
//! The model (docs/durability.md): a flush makes every write completed before it durable.
//! After a crash at any point, a device holds the content of its last flush, and each
//! 512-byte sector written since then holds either that content or what one of the writes
//! since the flush left in it, independently of every other sector. That covers writes lost
//! whole, writes torn at any sector boundary, and writes reordered among themselves. A
//! sector itself is never torn: every device written with `O_DIRECT` guarantees that much.
//! Several devices crash at the same instant, each with its own cache: a flush of one makes
//! nothing of another durable.
//!
//! The states are enumerated exhaustively while there are at most
//! [`Budget::exhaustive_up_to`] of them; beyond, [`Budget::samples`] are drawn with a seeded
//! generator, the two extremes (nothing of the pending writes, all of them) always among
//! them.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::io::{Block, BlockIo, ByteIo, MemIo, BLOCK_SIZE};
use super::seeded::SplitMix;

/// The unit a device writes atomically, in bytes.
pub const SECTOR: usize = 512;

/// Orders the operations of several devices that crash together.
#[derive(Clone, Default)]
pub struct Clock(Arc<AtomicU64>);

impl Clock {
    /// A clock at 0.
    pub fn new() -> Clock {
        Clock::default()
    }

    fn tick(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

/// One operation a device was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `bytes` written at byte `offset`.
    Write {
        /// Byte offset.
        offset: u64,
        /// What was written.
        bytes: Vec<u8>,
    },
    /// A flush (`fsync`, a cache flush).
    Flush,
}

/// What a device held at first and every operation on it, each stamped by its [`Clock`].
#[derive(Clone)]
pub struct Recording {
    initial: Vec<u8>,
    events: Vec<(u64, Event)>,
}

impl Recording {
    /// The content before the first write.
    pub fn initial(&self) -> &[u8] {
        &self.initial
    }

    /// The operations, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().map(|(_, e)| e)
    }

    /// The content once every write has reached the device.
    pub fn last(&self) -> Vec<u8> {
        let mut img = self.initial.clone();
        for e in self.events() {
            if let Event::Write { offset, bytes } = e {
                let at = crate::cast::index(*offset);
                img[at..at + bytes.len()].copy_from_slice(bytes);
            }
        }
        img
    }
}

/// A device in memory that records what is done to it. Reads see every write at once, as
/// through a cache; [`CrashIo::recording`] gives what a crash could leave of them.
pub struct CrashIo {
    live: MemIo,
    clock: Clock,
    recording: Mutex<Recording>,
}

impl CrashIo {
    /// A device holding `bytes`, on a clock of its own.
    pub fn new(bytes: Vec<u8>) -> CrashIo {
        CrashIo::on_clock(bytes, &Clock::new())
    }

    /// A device holding `bytes` whose operations are ordered by `clock`, shared with the
    /// other devices of the same run.
    pub fn on_clock(bytes: Vec<u8>, clock: &Clock) -> CrashIo {
        CrashIo {
            recording: Mutex::new(Recording {
                initial: bytes.clone(),
                events: Vec::new(),
            }),
            live: MemIo::from_bytes(bytes),
            clock: clock.clone(),
        }
    }

    /// Everything done so far.
    pub fn recording(&self) -> Recording {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.recording.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, e: Event) {
        let mut r = self.lock();
        r.events.push((self.clock.tick(), e));
    }
}

impl ByteIo for CrashIo {
    fn size_bytes(&self) -> u64 {
        ByteIo::size_bytes(&self.live)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.live.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        // Applied first: a write the device refuses is not recorded.
        self.live.write_at(buf, offset)?;
        self.record(Event::Write {
            offset,
            bytes: buf.to_vec(),
        });
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        self.record(Event::Flush);
        Ok(())
    }
}

impl BlockIo for CrashIo {
    fn nr_blocks(&self) -> u64 {
        self.live.nr_blocks()
    }

    fn read(&self, loc: u64, buf: &mut Block) -> io::Result<()> {
        self.live.read(loc, buf)
    }

    fn write(&self, loc: u64, buf: &Block) -> io::Result<()> {
        self.live.write(loc, buf)?;
        self.record(Event::Write {
            offset: loc * BLOCK_SIZE as u64,
            bytes: buf.0.to_vec(),
        });
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        self.record(Event::Flush);
        Ok(())
    }
}

/// A crash state's content as a read-only device, for the readers under test.
pub struct StateIo<'a>(pub &'a [u8]);

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "a crash state is read-only",
    )
}

fn out_of_range(offset: u64, len: usize, size: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{len} bytes at offset {offset} run past the end ({size} bytes)"),
    )
}

impl ByteIo for StateIo<'_> {
    fn size_bytes(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|o| self.0.get(o..o.checked_add(buf.len())?))
            .ok_or_else(|| out_of_range(offset, buf.len(), self.0.len()))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, _: &[u8], _: u64) -> io::Result<()> {
        Err(read_only())
    }

    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

impl BlockIo for StateIo<'_> {
    fn nr_blocks(&self) -> u64 {
        (self.0.len() / BLOCK_SIZE) as u64
    }

    fn read(&self, loc: u64, buf: &mut Block) -> io::Result<()> {
        if loc >= self.nr_blocks() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "block {loc} is beyond the end of the device ({} blocks)",
                    self.nr_blocks()
                ),
            ));
        }
        self.read_at(&mut buf.0, loc * BLOCK_SIZE as u64)
    }

    fn write(&self, _: u64, _: &Block) -> io::Result<()> {
        Err(read_only())
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}

/// How many crash states to look at per crash point.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Enumerate every state when there are at most this many.
    pub exhaustive_up_to: u64,
    /// Otherwise, this many states (at least the two extremes).
    pub samples: u64,
    /// Seed of the sampling.
    pub seed: u64,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            exhaustive_up_to: 1 << 16,
            samples: 64,
            seed: 0x5EED,
        }
    }
}

/// A check of one crash state: it gets the content of each device and says what is wrong.
pub type StateCheck<'a> = dyn FnMut(&[Vec<u8>]) -> Result<(), String> + 'a;

/// How many states of a crash point were looked at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// States handed to the check.
    pub states: u64,
    /// Whether they were all the states of the point.
    pub exhaustive: bool,
}

/// A sector that a crash may leave in several ways.
struct Uncertain {
    device: usize,
    offset: usize,
    /// What the last flush made durable there.
    durable: Vec<u8>,
    /// What the pending writes may have left, each different from the durable content and
    /// from each other (the durable content is choice 0, these are 1..).
    versions: Vec<Vec<u8>>,
}

/// The devices at one instant of a run: what is durable, and what is still in their caches.
pub struct CrashPoint<'r> {
    /// Operations of all devices before the crash.
    ops: usize,
    durable: Vec<Vec<u8>>,
    pending: Vec<Vec<(usize, &'r [u8])>>,
}

impl<'r> CrashPoint<'r> {
    /// How many operations (of all devices together) happened before this crash.
    pub fn ops(&self) -> usize {
        self.ops
    }

    /// Writes issued since each device's last flush.
    pub fn pending_writes(&self) -> usize {
        self.pending.iter().map(Vec::len).sum()
    }

    fn uncertain(&self) -> Vec<Uncertain> {
        let mut out = Vec::new();
        for (device, writes) in self.pending.iter().enumerate() {
            let img = &self.durable[device];
            let mut sectors: Vec<usize> = writes
                .iter()
                .flat_map(|&(off, b)| {
                    let end = off + b.len();
                    (off / SECTOR * SECTOR..end).step_by(SECTOR)
                })
                .collect();
            sectors.sort_unstable();
            sectors.dedup();
            for s in sectors {
                let end = (s + SECTOR).min(img.len());
                let mut cur = img[s..end].to_vec();
                let mut versions: Vec<Vec<u8>> = Vec::new();
                for &(off, b) in writes {
                    let (lo, hi) = (off.max(s), (off + b.len()).min(end));
                    if lo >= hi {
                        continue;
                    }
                    cur[lo - s..hi - s].copy_from_slice(&b[lo - off..hi - off]);
                    if cur[..] != img[s..end] && !versions.contains(&cur) {
                        versions.push(cur.clone());
                    }
                }
                if !versions.is_empty() {
                    out.push(Uncertain {
                        device,
                        offset: s,
                        durable: img[s..end].to_vec(),
                        versions,
                    });
                }
            }
        }
        out
    }

    /// Sectors whose content the crash leaves uncertain.
    pub fn uncertain_sectors(&self) -> usize {
        self.uncertain().len()
    }

    /// How many distinct states the crash may leave (saturating).
    pub fn state_count(&self) -> u64 {
        count_states(&self.uncertain())
    }

    /// Hands `check` the devices' content in every state this crash may leave, or in a
    /// sample of them (see [`Budget`]); `check` gets the content of each device, in the order
    /// the recordings were given. Stops at the first state `check` rejects and returns its
    /// message with a description of the state.
    pub fn for_each_state(
        &mut self,
        budget: &Budget,
        check: &mut StateCheck<'_>,
    ) -> Result<Coverage, String> {
        let unc = self.uncertain();
        let count = count_states(&unc);
        let mut choice = vec![0usize; unc.len()];
        let r = if count <= budget.exhaustive_up_to {
            self.exhaustive(&unc, &mut choice, check)
        } else {
            self.sampled(&unc, &mut choice, budget, check)
        };
        // Back to the durable content, whatever happened.
        for u in &unc {
            self.set(u, 0);
        }
        r
    }

    fn set(&mut self, u: &Uncertain, choice: usize) {
        let img = &mut self.durable[u.device];
        let end = (u.offset + SECTOR).min(img.len());
        let dst = &mut img[u.offset..end];
        match choice {
            0 => dst.copy_from_slice(&u.durable),
            k => dst.copy_from_slice(&u.versions[k - 1]),
        }
    }

    fn describe(&self, unc: &[Uncertain], choice: &[usize]) -> String {
        const SHOWN: usize = 8;
        let landed: Vec<String> = unc
            .iter()
            .zip(choice)
            .filter(|(_, &c)| c != 0)
            .map(|(u, c)| {
                format!(
                    "device {} sector {} = version {c}",
                    u.device,
                    u.offset / SECTOR
                )
            })
            .collect();
        let mut what = match landed.len() {
            0 => "nothing pending reached the device".to_string(),
            n if n > SHOWN => format!(
                "{} and {} more sectors",
                landed[..SHOWN].join(", "),
                n - SHOWN
            ),
            _ => landed.join(", "),
        };
        what = format!("{}: {what}", plural_writes(self.pending_writes()));
        match self.ops {
            0 => format!("crash before any operation, {what}"),
            n => format!("crash after operation {n}, {what}"),
        }
    }

    fn exhaustive(
        &mut self,
        unc: &[Uncertain],
        choice: &mut [usize],
        check: &mut StateCheck<'_>,
    ) -> Result<Coverage, String> {
        let mut states = 0;
        loop {
            states += 1;
            check(&self.durable).map_err(|m| format!("{m} ({})", self.describe(unc, choice)))?;
            // The next state: an odometer over the sectors' choices.
            let mut i = 0;
            loop {
                let Some(u) = unc.get(i) else {
                    return Ok(Coverage {
                        states,
                        exhaustive: true,
                    });
                };
                choice[i] = (choice[i] + 1) % (u.versions.len() + 1);
                self.set(u, choice[i]);
                if choice[i] != 0 {
                    break;
                }
                i += 1;
            }
        }
    }

    fn sampled(
        &mut self,
        unc: &[Uncertain],
        choice: &mut [usize],
        budget: &Budget,
        check: &mut StateCheck<'_>,
    ) -> Result<Coverage, String> {
        let mut rng = SplitMix(budget.seed ^ (self.ops as u64).wrapping_mul(0x9E37_79B9));
        let samples = budget.samples.max(2);
        for n in 0..samples {
            for (i, u) in unc.iter().enumerate() {
                let k = u.versions.len() as u64 + 1;
                choice[i] = match n {
                    0 => 0,
                    1 => u.versions.len(),
                    _ => crate::cast::index(rng.below(k)),
                };
                self.set(u, choice[i]);
            }
            check(&self.durable).map_err(|m| format!("{m} ({})", self.describe(unc, choice)))?;
        }
        Ok(Coverage {
            states: samples,
            exhaustive: false,
        })
    }
}

fn count_states(unc: &[Uncertain]) -> u64 {
    unc.iter()
        .fold(1u64, |n, u| n.saturating_mul(u.versions.len() as u64 + 1))
}

fn plural_writes(n: usize) -> String {
    if n == 1 {
        "1 write pending".into()
    } else {
        format!("{n} writes pending")
    }
}

/// Walks the crash points of devices recorded on one [`Clock`]: before the first operation
/// and after each operation of any of them, in clock order. `at` gets each point and may
/// look at its states with [`CrashPoint::for_each_state`]; the walk stops at its first
/// error.
pub fn crash_points(
    recordings: &[&Recording],
    at: &mut dyn FnMut(&mut CrashPoint<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut events: Vec<(u64, usize, &Event)> = recordings
        .iter()
        .enumerate()
        .flat_map(|(d, r)| r.events.iter().map(move |(t, e)| (*t, d, e)))
        .collect();
    events.sort_by_key(|&(t, d, _)| (t, d));
    let mut point = CrashPoint {
        ops: 0,
        durable: recordings.iter().map(|r| r.initial.clone()).collect(),
        pending: vec![Vec::new(); recordings.len()],
    };
    at(&mut point)?;
    for (_, d, e) in events {
        match e {
            Event::Write { offset, bytes } => {
                point.pending[d].push((crate::cast::index(*offset), bytes));
            }
            Event::Flush => {
                for (off, b) in std::mem::take(&mut point.pending[d]) {
                    point.durable[d][off..off + b.len()].copy_from_slice(b);
                }
            }
        }
        point.ops += 1;
        at(&mut point)?;
    }
    Ok(())
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    /// Every state of the single point after `ops` operations, as byte vectors of device 0.
    fn states_after(rec: &Recording, ops: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        crash_points(&[rec], &mut |p| {
            if p.ops() == ops {
                let cov = p.for_each_state(&Budget::default(), &mut |imgs| {
                    out.push(imgs[0].clone());
                    Ok(())
                })?;
                assert!(cov.exhaustive);
                assert_eq!(cov.states as usize, out.len());
            }
            Ok(())
        })
        .unwrap();
        out.sort();
        out
    }

    fn sectors(fill: &[u8]) -> Vec<u8> {
        fill.iter().flat_map(|&b| [b; SECTOR]).collect()
    }

    #[test]
    fn two_pending_writes_of_a_sector_leave_four_states() {
        let io = CrashIo::new(sectors(&[0, 0, 0]));
        io.write_at(&[1; SECTOR], 0).unwrap();
        io.write_at(&[2; SECTOR], 2 * SECTOR as u64).unwrap();
        let rec = io.recording();
        assert_eq!(rec.last(), sectors(&[1, 0, 2]));
        assert_eq!(states_after(&rec, 0), vec![sectors(&[0, 0, 0])]);
        assert_eq!(
            states_after(&rec, 1),
            vec![sectors(&[0, 0, 0]), sectors(&[1, 0, 0])]
        );
        assert_eq!(
            states_after(&rec, 2),
            vec![
                sectors(&[0, 0, 0]),
                sectors(&[0, 0, 2]),
                sectors(&[1, 0, 0]),
                sectors(&[1, 0, 2])
            ]
        );
    }

    #[test]
    fn a_flush_makes_the_earlier_writes_permanent() {
        let io = CrashIo::new(sectors(&[0, 0]));
        io.write_at(&[1; SECTOR], 0).unwrap();
        io.sync().unwrap();
        io.write_at(&[2; SECTOR], SECTOR as u64).unwrap();
        let rec = io.recording();
        assert_eq!(states_after(&rec, 2), vec![sectors(&[1, 0])]);
        assert_eq!(
            states_after(&rec, 3),
            vec![sectors(&[1, 0]), sectors(&[1, 2])]
        );
    }

    #[test]
    fn a_write_tears_at_sector_boundaries_and_rewrites_leave_any_version() {
        let io = CrashIo::new(sectors(&[0, 0]));
        // One write of two sectors: either may land without the other.
        io.write_at(&sectors(&[1, 1]), 0).unwrap();
        // Sector 1 written again, and rewritten with its durable content: only the versions
        // that differ count.
        io.write_at(&[3; SECTOR], SECTOR as u64).unwrap();
        io.write_at(&[0; SECTOR], SECTOR as u64).unwrap();
        let rec = io.recording();
        let s = states_after(&rec, 3);
        let mut want = vec![];
        for a in [0, 1] {
            for b in [0, 1, 3] {
                want.push(sectors(&[a, b]));
            }
        }
        want.sort();
        assert_eq!(s, want);
        // A write smaller than a sector changes only its bytes of the sector.
        let io = CrashIo::new(vec![0; SECTOR]);
        io.write_at(&[9; 4], 8).unwrap();
        let s = states_after(&io.recording(), 1);
        assert_eq!(s.len(), 2);
        assert_eq!(&s[1][6..14], &[0, 0, 9, 9, 9, 9, 0, 0]);
    }

    #[test]
    fn devices_on_one_clock_crash_together_and_flush_apart() {
        let clock = Clock::new();
        let a = CrashIo::on_clock(vec![0; SECTOR], &clock);
        let b = CrashIo::on_clock(vec![0; SECTOR], &clock);
        a.write_at(&[1; SECTOR], 0).unwrap();
        a.sync().unwrap();
        b.write_at(&[2; SECTOR], 0).unwrap();
        let (ra, rb) = (a.recording(), b.recording());
        let mut seen = Vec::new();
        crash_points(&[&ra, &rb], &mut |p| {
            let mut states = Vec::new();
            p.for_each_state(&Budget::default(), &mut |imgs| {
                states.push((imgs[0][0], imgs[1][0]));
                Ok(())
            })?;
            states.sort();
            seen.push(states);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                vec![(0, 0)],
                vec![(0, 0), (1, 0)],
                vec![(1, 0)],
                vec![(1, 0), (1, 2)],
            ]
        );
    }

    #[test]
    fn many_pending_sectors_are_sampled_with_both_extremes() {
        let io = CrashIo::new(vec![0; 20 * SECTOR]);
        io.write_at(&vec![7; 20 * SECTOR], 0).unwrap();
        let rec = io.recording();
        let budget = Budget {
            samples: 10,
            ..Budget::default()
        };
        let mut seen = Vec::new();
        crash_points(&[&rec], &mut |p| {
            if p.ops() == 1 {
                assert_eq!(p.uncertain_sectors(), 20);
                assert_eq!(p.state_count(), 1 << 20);
                let cov = p.for_each_state(&budget, &mut |imgs| {
                    seen.push(imgs[0].iter().filter(|&&b| b == 7).count() / SECTOR);
                    Ok(())
                })?;
                assert_eq!(
                    cov,
                    Coverage {
                        states: 10,
                        exhaustive: false
                    }
                );
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(&seen[..2], &[0, 20]);
        assert!(seen[2..].iter().any(|&n| n != 0 && n != 20), "{seen:?}");
    }

    #[test]
    fn a_rejected_state_is_described_and_the_point_restored() {
        let io = CrashIo::new(vec![0; 2 * SECTOR]);
        io.write_at(&[5; SECTOR], SECTOR as u64).unwrap();
        let rec = io.recording();
        let err = crash_points(&[&rec], &mut |p| {
            p.for_each_state(&Budget::default(), &mut |imgs| {
                if imgs[0][SECTOR] == 5 {
                    Err("five".into())
                } else {
                    Ok(())
                }
            })?;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(
            err,
            "five (crash after operation 1, 1 write pending: device 0 sector 1 = version 1)"
        );
        let view = StateIo(rec.initial());
        let mut b = [1u8; 4];
        view.read_at(&mut b, 1020).unwrap();
        assert_eq!(b, [0; 4]);
        assert!(view.write_at(&b, 0).is_err());
        assert!(view.read_at(&mut b, 1022).is_err());
    }
}
