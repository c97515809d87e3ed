//! A device-mapper in memory that behaves like one era target as far as a live session can
//! see: the status line follows the kernel's era rules (a checkpoint and a snapshot each
//! start a new era, one snapshot at a time), every request is logged, and any request can be
//! made to fail.

use std::sync::Mutex;

use super::{DevId, DeviceInfo, DeviceMapper, DmDevice, DmError, TargetLine};

/// The target's state.
#[derive(Debug, Clone)]
pub struct MockEra {
    /// Whether a device of this name exists.
    pub exists: bool,
    /// Whether it is suspended.
    pub suspended: bool,
    /// The live table; `None` for no table.
    pub table: Option<TargetLine>,
    /// Current era.
    pub era: u32,
    /// Held snapshot root.
    pub held: Option<u64>,
    /// The root the next `take_metadata_snap` reports.
    pub next_root: u64,
    /// Whether `checkpoint` starts a new era (the kernel's documentation allows it not to).
    pub checkpoint_advances: bool,
}

impl MockEra {
    /// A resumed era target of `length` sectors with blocks of `block_size` sectors, its
    /// metadata on 253:0 and its origin on 253:16.
    pub fn new(length: u64, block_size: u32, era: u32) -> MockEra {
        MockEra {
            exists: true,
            suspended: false,
            table: Some(TargetLine {
                start: 0,
                length,
                target_type: "era".into(),
                params: format!("253:0 253:16 {block_size}"),
            }),
            era,
            held: None,
            next_root: 412,
            checkpoint_advances: true,
        }
    }
}

/// The mock.
pub struct MockDm {
    /// The target's state, changed by messages.
    pub state: Mutex<MockEra>,
    /// Every request, in order: `info`, `table`, `status`, or the message text.
    pub log: Mutex<Vec<String>>,
    /// A request (as logged) that fails, and with which error number.
    pub fail: Mutex<Option<(String, i32)>>,
}

impl MockDm {
    /// A mock holding `state`.
    pub fn new(state: MockEra) -> MockDm {
        MockDm {
            state: Mutex::new(state),
            log: Mutex::new(Vec::new()),
            fail: Mutex::new(None),
        }
    }

    /// The requests made so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The messages sent so far.
    pub fn messages(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| {
                !matches!(
                    r.as_str(),
                    "info" | "table" | "status" | "suspend" | "resume"
                )
            })
            .collect()
    }

    /// Makes `request` fail with `errno` from now on.
    pub fn fail_on(&self, request: &str, errno: i32) {
        *self.fail.lock().unwrap() = Some((request.to_string(), errno));
    }

    fn enter(&self, request: &str) -> Result<MockEra, DmError> {
        self.log.lock().unwrap().push(request.to_string());
        if let Some((r, errno)) = &*self.fail.lock().unwrap() {
            if r == request {
                return Err(DmError::Request {
                    what: request.to_string(),
                    errno: *errno,
                });
            }
        }
        let s = self.state.lock().unwrap().clone();
        if !s.exists {
            return Err(DmError::NoDevice);
        }
        Ok(s)
    }
}

impl DeviceMapper for MockDm {
    fn info(&self, _: &DmDevice) -> Result<DeviceInfo, DmError> {
        let s = self.enter("info")?;
        Ok(DeviceInfo {
            dev: DevId {
                major: 253,
                minor: 48,
            },
            suspended: s.suspended,
            active_table: s.table.is_some(),
            inactive_table: false,
            target_count: s.table.is_some() as u32,
        })
    }

    fn table(&self, _: &DmDevice) -> Result<Vec<TargetLine>, DmError> {
        Ok(self.enter("table")?.table.into_iter().collect())
    }

    fn status(&self, _: &DmDevice) -> Result<Vec<TargetLine>, DmError> {
        let s = self.enter("status")?;
        assert!(
            !s.suspended,
            "the kernel's era status hangs on a suspended target"
        );
        Ok(s.table
            .map(|t| {
                let held = s.held.map_or("-".to_string(), |r| r.to_string());
                let params = if t.target_type == "era" {
                    format!("8 100/1024 {} {held}", s.era)
                } else {
                    String::new()
                };
                TargetLine { params, ..t }
            })
            .into_iter()
            .collect())
    }

    fn message(&self, _: &DmDevice, sector: u64, message: &str) -> Result<(), DmError> {
        let s = self.enter(message)?;
        assert_eq!(sector, 0);
        assert!(!s.suspended, "era messages hang on a suspended target");
        let einval = Err(DmError::Request {
            what: format!("message '{message}'"),
            errno: libc::EINVAL,
        });
        let mut st = self.state.lock().unwrap();
        match message {
            "checkpoint" => {
                if st.checkpoint_advances {
                    st.era += 1;
                }
            }
            "take_metadata_snap" => {
                if st.held.is_some() {
                    return einval;
                }
                st.era += 1;
                st.held = Some(st.next_root);
            }
            "drop_metadata_snap" => {
                if st.held.take().is_none() {
                    return einval;
                }
            }
            _ => return einval,
        }
        Ok(())
    }

    fn suspend(&self, _: &DmDevice) -> Result<(), DmError> {
        self.enter("suspend")?;
        self.state.lock().unwrap().suspended = true;
        Ok(())
    }

    fn resume(&self, _: &DmDevice) -> Result<(), DmError> {
        self.enter("resume")?;
        self.state.lock().unwrap().suspended = false;
        Ok(())
    }
}
