//! Running our kernel-lab scenarios (tests/kernel-lab/run.sh) and reading what they
//! recorded: the manifest and the carried programs' outputs.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::Value;

use super::run::Outcome;

/// Where the lab runs keep their outputs: `target/kernel-lab`.
pub fn target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/kernel-lab")
}

/// Runs `scenario` with `env` set, writing to `target/kernel-lab/<out>`, and returns its
/// manifest. With `KLAB_REUSE=1` in the environment, the outputs of an earlier run are
/// checked again without booting a VM.
pub fn run_lab_in(scenario: &str, out: &str, env: &[(&str, &Path)]) -> Value {
    // Runs share the lab's scratch folder (kernel, initramfs): one at a time.
    static LAB: Mutex<()> = Mutex::new(());
    let _guard = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel-lab/run.sh");
    let dir = target().join(out);
    let manifest = dir.join(format!("{scenario}.json"));
    if std::env::var_os("KLAB_REUSE").is_none() || !manifest.exists() {
        let status = Command::new(script)
            .arg(scenario)
            .env("KLAB_OUT", &dir)
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .status()
            .expect("run.sh starts");
        assert!(status.success(), "the lab run failed");
    }
    let text = std::fs::read_to_string(manifest).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// One carried program's run: what it did (its fields read through), and when.
pub struct Run {
    /// Its exit code and streams.
    pub outcome: Outcome,
    /// The lab step it ran at.
    pub step: u64,
}

impl std::ops::Deref for Run {
    type Target = Outcome;

    fn deref(&self) -> &Outcome {
        &self.outcome
    }
}

/// The run `name` of manifest `m`, whose outputs are in `target/kernel-lab/<out>`.
pub fn carried_in(m: &Value, out: &str, name: &str) -> Run {
    let r = super::entry(&m["carried_runs"], "name", name);
    let read =
        |k: &str| std::fs::read_to_string(target().join(out).join(r[k].as_str().unwrap())).unwrap();
    Run {
        outcome: Outcome {
            code: r["exit_code"].as_i64().unwrap() as i32,
            stdout: read("stdout"),
            stderr: read("stderr"),
        },
        step: r["step"].as_u64().unwrap(),
    }
}

/// The steps of a manifest.
pub fn steps(m: &Value) -> &Vec<Value> {
    m["steps"].as_array().unwrap()
}

/// The parsed status of `dm_name` recorded at step `seq`, if any.
pub fn status_at<'a>(m: &'a Value, seq: u64, dm_name: &str) -> Option<&'a Value> {
    steps(m)
        .iter()
        .find(|s| s["seq"] == seq)?
        .get("status")?
        .as_array()?
        .iter()
        .find(|s| s["dm_name"] == dm_name)
}

/// The `note` steps' texts.
pub fn notes(m: &Value) -> Vec<&str> {
    steps(m)
        .iter()
        .filter(|s| s["kind"] == "note")
        .filter_map(|s| s["command"].as_str())
        .collect()
}
