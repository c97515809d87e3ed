//! The device-mapper ioctl interface (`linux/dm-ioctl.h`, interface version 4): a `struct
//! dm_ioctl` header followed by request or answer data, in one buffer handed to
//! `ioctl(2)` on `/dev/mapper/control`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use super::{DevId, DeviceInfo, DeviceMapper, DmDevice, DmError, TargetLine};

/// The control node.
pub const CONTROL: &str = "/dev/mapper/control";

/// Longest name plus its NUL (`DM_NAME_LEN`).
pub const NAME_LEN: usize = 128;

// struct dm_ioctl: version[3] u32, data_size u32, data_start u32, target_count u32,
// open_count i32, flags u32, event_nr u32, padding u32, dev u64, name[128], uuid[129], data[7].
const HEADER_SIZE: usize = DATA_START as usize;
/// Where the data starts: right after the header, as its `data_start` field says it.
const DATA_START: u32 = 312;
const OFF_DATA_SIZE: usize = 12;
const OFF_DATA_START: usize = 16;
const OFF_TARGET_COUNT: usize = 20;
const OFF_FLAGS: usize = 28;
const OFF_DEV: usize = 40;
const OFF_NAME: usize = 48;

// struct dm_target_spec: sector_start u64, length u64, status i32, next u32, target_type[16].
const SPEC_SIZE: usize = 40;
const TYPE_LEN: usize = 16;

const VERSION: [u32; 3] = [4, 0, 0];

const DM_DEV_SUSPEND: u32 = 6;
const DM_DEV_STATUS: u32 = 7;
const DM_TABLE_STATUS: u32 = 12;
const DM_TARGET_MSG: u32 = 14;

const SUSPEND_FLAG: u32 = 1 << 1;
const STATUS_TABLE_FLAG: u32 = 1 << 4;
const ACTIVE_PRESENT_FLAG: u32 = 1 << 5;
const INACTIVE_PRESENT_FLAG: u32 = 1 << 6;
const BUFFER_FULL_FLAG: u32 = 1 << 8;

/// Answers larger than this are refused rather than grown into.
const MAX_BUFFER: usize = 16 << 20;

/// `_IOWR(0xfd, nr, struct dm_ioctl)`.
fn request(nr: u32) -> u64 {
    (3u64 << 30) | ((HEADER_SIZE as u64) << 16) | (0xfd << 8) | nr as u64
}

/// An open `/dev/mapper/control`.
pub struct Control {
    file: File,
}

impl Control {
    /// Opens the control node.
    pub fn open() -> Result<Control, DmError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(CONTROL)
            .map_err(DmError::Control)?;
        Ok(Control { file })
    }

    /// Runs one request. `data` is placed after the header; the buffer is grown while the
    /// kernel says the answer did not fit.
    fn call(
        &self,
        nr: u32,
        what: &str,
        dev: &DmDevice,
        flags: u32,
        data: &[u8],
    ) -> Result<Buffer, DmError> {
        let mut size = (HEADER_SIZE + data.len() + 8).max(16 << 10);
        loop {
            let mut buf = Buffer::new(size);
            buf.put_header(dev, flags, data)?;
            // SAFETY: the buffer is `size` bytes, 8-aligned, and its header says so in
            // data_size: the kernel reads and writes within it.
            let r = unsafe {
                libc::ioctl(
                    self.file.as_raw_fd(),
                    request(nr) as libc::Ioctl,
                    buf.words.as_mut_ptr(),
                )
            };
            if r < 0 {
                let e = io::Error::last_os_error().raw_os_error().unwrap_or(0);
                return Err(match e {
                    libc::ENXIO => DmError::NoDevice,
                    libc::EACCES | libc::EPERM => DmError::Permission,
                    _ => DmError::Request {
                        what: what.to_string(),
                        errno: e,
                    },
                });
            }
            if buf.u32_at(OFF_FLAGS) & BUFFER_FULL_FLAG == 0 {
                return Ok(buf);
            }
            size *= 4;
            if size > MAX_BUFFER {
                return Err(DmError::Malformed(format!(
                    "{what}: the answer is larger than {MAX_BUFFER} bytes"
                )));
            }
        }
    }

    fn targets(&self, dev: &DmDevice, table: bool) -> Result<Vec<TargetLine>, DmError> {
        let (what, flags) = if table {
            ("table", STATUS_TABLE_FLAG)
        } else {
            ("status", 0)
        };
        let buf = self.call(DM_TABLE_STATUS, what, dev, flags, &[])?;
        buf.target_lines()
    }
}

impl DeviceMapper for Control {
    fn info(&self, dev: &DmDevice) -> Result<DeviceInfo, DmError> {
        let buf = self.call(DM_DEV_STATUS, "info", dev, 0, &[])?;
        let flags = buf.u32_at(OFF_FLAGS);
        Ok(DeviceInfo {
            dev: DevId::from_rdev(buf.u64_at(OFF_DEV)),
            suspended: flags & SUSPEND_FLAG != 0,
            active_table: flags & ACTIVE_PRESENT_FLAG != 0,
            inactive_table: flags & INACTIVE_PRESENT_FLAG != 0,
            target_count: buf.u32_at(OFF_TARGET_COUNT),
        })
    }

    fn table(&self, dev: &DmDevice) -> Result<Vec<TargetLine>, DmError> {
        self.targets(dev, true)
    }

    fn status(&self, dev: &DmDevice) -> Result<Vec<TargetLine>, DmError> {
        self.targets(dev, false)
    }

    fn message(&self, dev: &DmDevice, sector: u64, message: &str) -> Result<(), DmError> {
        if message.contains('\0') {
            return Err(DmError::Malformed("a message with a NUL byte".into()));
        }
        // struct dm_target_msg: sector u64, then the NUL-terminated message.
        let mut data = sector.to_ne_bytes().to_vec();
        data.extend_from_slice(message.as_bytes());
        data.push(0);
        self.call(
            DM_TARGET_MSG,
            &format!("message '{message}'"),
            dev,
            0,
            &data,
        )?;
        Ok(())
    }

    fn suspend(&self, dev: &DmDevice) -> Result<(), DmError> {
        self.call(DM_DEV_SUSPEND, "suspend", dev, SUSPEND_FLAG, &[])?;
        Ok(())
    }

    fn resume(&self, dev: &DmDevice) -> Result<(), DmError> {
        self.call(DM_DEV_SUSPEND, "resume", dev, 0, &[])?;
        Ok(())
    }
}

/// One ioctl buffer, kept in 64-bit words for the alignment the kernel's structures need.
struct Buffer {
    words: Vec<u64>,
}

impl Buffer {
    fn new(size: usize) -> Buffer {
        Buffer {
            words: vec![0; size.div_ceil(8)],
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: any u64 slice is a valid byte slice of 8 times its length.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast(), self.words.len() * 8) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and every byte pattern is a valid u64.
        unsafe {
            std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast(), self.words.len() * 8)
        }
    }

    fn u32_at(&self, off: usize) -> u32 {
        let b = self.bytes();
        u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
    }

    fn u64_at(&self, off: usize) -> u64 {
        let mut a = [0; 8];
        a.copy_from_slice(&self.bytes()[off..off + 8]);
        u64::from_ne_bytes(a)
    }

    fn put_u32(&mut self, off: usize, v: u32) {
        self.bytes_mut()[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    fn put_header(&mut self, dev: &DmDevice, flags: u32, data: &[u8]) -> Result<(), DmError> {
        // Never more than MAX_BUFFER but for a request's own data, which the field must hold.
        let size = u32::try_from(self.words.len() * 8).map_err(|_| DmError::Request {
            what: "a request of 4 GiB or more".to_string(),
            errno: libc::E2BIG,
        })?;
        for (i, v) in VERSION.iter().enumerate() {
            self.put_u32(i * 4, *v);
        }
        self.put_u32(OFF_DATA_SIZE, size);
        self.put_u32(OFF_DATA_START, DATA_START);
        self.put_u32(OFF_FLAGS, flags);
        match dev {
            DmDevice::Name(name) => {
                if name.len() >= NAME_LEN || name.contains('\0') {
                    return Err(DmError::BadName(name.clone()));
                }
                self.bytes_mut()[OFF_NAME..OFF_NAME + name.len()].copy_from_slice(name.as_bytes());
            }
            DmDevice::Dev { dev, .. } => {
                let v = dev.rdev().to_ne_bytes();
                self.bytes_mut()[OFF_DEV..OFF_DEV + 8].copy_from_slice(&v);
            }
        }
        self.bytes_mut()[HEADER_SIZE..HEADER_SIZE + data.len()].copy_from_slice(data);
        Ok(())
    }

    /// The `dm_target_spec` entries of a table or status answer, each followed by its text;
    /// `next` is the offset of the following entry from the start of the data.
    fn target_lines(&self) -> Result<Vec<TargetLine>, DmError> {
        let b = self.bytes();
        let start = self.u32_at(OFF_DATA_START) as usize;
        let end = (self.u32_at(OFF_DATA_SIZE) as usize).min(b.len());
        let count = self.u32_at(OFF_TARGET_COUNT);
        let bad = |s: &str| DmError::Malformed(s.to_string());
        if start > end {
            return Err(bad("data starts past its end"));
        }
        let data = &b[start..end];
        let mut out = Vec::new();
        let mut at = 0usize;
        for _ in 0..count {
            let spec = data
                .get(at..at + SPEC_SIZE)
                .ok_or_else(|| bad("a target entry runs past the answer"))?;
            let num = |o: usize| {
                let mut a = [0; 8];
                a.copy_from_slice(&spec[o..o + 8]);
                u64::from_ne_bytes(a)
            };
            let next = u32::from_ne_bytes([spec[20], spec[21], spec[22], spec[23]]) as usize;
            let ty = &spec[24..24 + TYPE_LEN];
            let text = &data[at + SPEC_SIZE..];
            let text = &text[..text.iter().position(|&c| c == 0).unwrap_or(text.len())];
            out.push(TargetLine {
                start: num(0),
                length: num(8),
                target_type: c_string(ty),
                params: String::from_utf8_lossy(text).into_owned(),
            });
            if next <= at && out.len() < count as usize {
                return Err(bad("target entries do not advance"));
            }
            at = next;
        }
        Ok(out)
    }
}

fn c_string(b: &[u8]) -> String {
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    /// An answer as the kernel lays it out: header, then each spec and its text, the next
    /// spec 8-aligned.
    fn answer(lines: &[(u64, u64, &str, &str)]) -> Buffer {
        let mut buf = Buffer::new(4096);
        buf.put_header(&DmDevice::Name("e".into()), 0, &[]).unwrap();
        let mut at = 0usize;
        for (start, len, ty, text) in lines {
            let base = HEADER_SIZE + at;
            let b = buf.bytes_mut();
            b[base..base + 8].copy_from_slice(&start.to_ne_bytes());
            b[base + 8..base + 16].copy_from_slice(&len.to_ne_bytes());
            b[base + 24..base + 24 + ty.len()].copy_from_slice(ty.as_bytes());
            let t = base + SPEC_SIZE;
            b[t..t + text.len()].copy_from_slice(text.as_bytes());
            let next = (at + SPEC_SIZE + text.len() + 1).next_multiple_of(8);
            b[base + 20..base + 24].copy_from_slice(&(next as u32).to_ne_bytes());
            at = next;
        }
        buf.put_u32(OFF_TARGET_COUNT, lines.len() as u32);
        buf.put_u32(OFF_DATA_SIZE, (HEADER_SIZE + at) as u32);
        buf
    }

    #[test]
    fn request_numbers_are_those_of_the_kernel_header() {
        // DM_DEV_STATUS, DM_TABLE_STATUS and DM_TARGET_MSG as strace prints them.
        assert_eq!(request(DM_DEV_SUSPEND), 0xc138fd06);
        assert_eq!(request(DM_DEV_STATUS), 0xc138fd07);
        assert_eq!(request(DM_TABLE_STATUS), 0xc138fd0c);
        assert_eq!(request(DM_TARGET_MSG), 0xc138fd0e);
    }

    #[test]
    fn table_answers_are_read_entry_by_entry() {
        let buf = answer(&[
            (0, 262144, "era", "253:0 253:16 64"),
            (262144, 8, "linear", "253:32 0"),
        ]);
        let lines = buf.target_lines().unwrap();
        assert_eq!(
            lines,
            vec![
                TargetLine {
                    start: 0,
                    length: 262144,
                    target_type: "era".into(),
                    params: "253:0 253:16 64".into()
                },
                TargetLine {
                    start: 262144,
                    length: 8,
                    target_type: "linear".into(),
                    params: "253:32 0".into()
                },
            ]
        );
    }

    #[test]
    fn a_lying_answer_is_an_error_not_a_panic() {
        let mut buf = answer(&[(0, 8, "era", "8 10/1024 1 -")]);
        buf.put_u32(OFF_TARGET_COUNT, 1000);
        assert!(matches!(buf.target_lines(), Err(DmError::Malformed(_))));
        let mut buf = answer(&[(0, 8, "era", "x")]);
        buf.put_u32(OFF_DATA_START, 1 << 20);
        assert!(matches!(buf.target_lines(), Err(DmError::Malformed(_))));
    }

    #[test]
    fn the_header_names_the_device_by_name_or_number() {
        let mut buf = Buffer::new(4096);
        buf.put_header(&DmDevice::Name("era0".into()), 0, b"xy")
            .unwrap();
        assert_eq!(&buf.bytes()[OFF_NAME..OFF_NAME + 5], b"era0\0");
        assert_eq!(buf.u32_at(OFF_DATA_SIZE), 4096);
        assert_eq!(&buf.bytes()[HEADER_SIZE..HEADER_SIZE + 2], b"xy");
        let dev = DevId {
            major: 253,
            minor: 3,
        };
        let mut buf = Buffer::new(4096);
        buf.put_header(
            &DmDevice::Dev {
                path: "/dev/dm-3".into(),
                dev,
            },
            0,
            &[],
        )
        .unwrap();
        assert_eq!(DevId::from_rdev(buf.u64_at(OFF_DEV)), dev);
        assert_eq!(buf.bytes()[OFF_NAME], 0);
    }
}
