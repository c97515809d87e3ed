//! The README's recipes are scripts in `examples/recipes/`, run here against files standing
//! in for the devices, failures included, and the README shows each script as it is.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{command, exe, fixture, outcome, root, script, Outcome, Rng};
use serde_json::Value;

/// Every recipe script; the README shows each.
const RECIPES: &[&str] = &[
    "incremental-backup.sh",
    "backup-held-snapshot.sh",
    "vendor-snapshot-era.sh",
    "cache-passthrough.sh",
    "stale-after-rollback.sh",
];

/// The path of recipe script `name`.
fn recipe(name: &str) -> PathBuf {
    root().join("examples/recipes").join(name)
}

/// Fails in CI, where jq is installed, when it is missing; elsewhere the recipe tests are
/// skipped without it.
fn have_jq() -> bool {
    let found = Command::new("jq").arg("--version").output().is_ok();
    assert!(
        found || std::env::var_os("CI").is_none(),
        "jq is needed by the recipes"
    );
    found
}

struct Site {
    dir: tempfile::TempDir,
    meta: PathBuf,
    origin: PathBuf,
    backup: PathBuf,
    state: PathBuf,
    origin_bytes: Vec<u8>,
}

impl Site {
    /// The kernel's era-basic metadata (1024 blocks of 64 KiB), an origin of random bytes
    /// and a zeroed backup.
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("meta.img");
        fs::write(&meta, fixture("era-basic.meta.img.gz")).unwrap();
        let mut rng = Rng(7);
        let origin_bytes: Vec<u8> = (0..(1024 * 65536) / 8)
            .flat_map(|_| rng.next().to_le_bytes())
            .collect();
        let origin = dir.path().join("origin.img");
        fs::write(&origin, &origin_bytes).unwrap();
        let backup = dir.path().join("backup.img");
        fs::write(&backup, vec![0u8; origin_bytes.len()]).unwrap();
        let state = dir.path().join("era0.next");
        Site {
            dir,
            meta,
            origin,
            backup,
            state,
            origin_bytes,
        }
    }

    fn backup(&self, backup: &Path, meta: &Path, stand_ins: Option<&Path>) -> Outcome {
        outcome(script(&recipe("incremental-backup.sh"), stand_ins).args([
            &self.state,
            &self.origin,
            backup,
            meta,
        ]))
    }

    fn state(&self) -> Option<String> {
        fs::read_to_string(&self.state).ok()
    }

    /// The byte ranges era_invalidate itself lists since `era`.
    fn listed_since(&self, era: u32) -> Vec<(usize, usize)> {
        let o = outcome(
            command("era_invalidate")
                .args(["--written-since", &era.to_string(), "--format", "json"])
                .args(["--units", "bytes"])
                .arg(&self.meta),
        );
        let v: Value = serde_json::from_str(&o.stdout).unwrap();
        v["ranges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let at = |k: &str| r[k].as_u64().unwrap() as usize;
                (at("begin"), at("end"))
            })
            .collect()
    }
}

#[test]
fn the_backup_recipe_copies_what_was_written_and_saves_the_era_last() {
    if !have_jq() {
        return;
    }
    let s = Site::new();
    // The first run (no saved era) copies everything.
    let o = s.backup(&s.backup, &s.meta, None);
    assert!(o.success(), "{}", o.stderr);
    assert!(fs::read(&s.backup).unwrap() == s.origin_bytes);
    assert_eq!(s.state().as_deref(), Some("4\n"));

    // An incremental run copies exactly the ranges written since the saved era.
    fs::write(&s.backup, vec![0u8; s.origin_bytes.len()]).unwrap();
    fs::write(&s.state, "3\n").unwrap();
    let o = s.backup(&s.backup, &s.meta, None);
    assert!(o.success(), "{}", o.stderr);
    let ranges = s.listed_since(3);
    assert!(!ranges.is_empty());
    let backup = fs::read(&s.backup).unwrap();
    let mut expected = vec![0u8; s.origin_bytes.len()];
    for &(b, e) in &ranges {
        expected[b..e].copy_from_slice(&s.origin_bytes[b..e]);
    }
    assert!(
        backup == expected,
        "the backup differs from the listed ranges"
    );
    assert_eq!(s.state().as_deref(), Some("4\n"));
}

#[test]
fn a_failed_copy_leaves_the_saved_era_as_it_was() {
    if !have_jq() {
        return;
    }
    let s = Site::new();
    fs::write(&s.state, "2\n").unwrap();
    // A backup on a full device: every copy fails.
    let o = s.backup(Path::new("/dev/full"), &s.meta, None);
    assert!(!o.success());
    assert_eq!(s.state().as_deref(), Some("2\n"));
    assert!(!s.dir.path().join("era0.next.new").exists());
}

#[test]
fn a_failed_era_invalidate_leaves_the_saved_era_as_it_was() {
    if !have_jq() {
        return;
    }
    let s = Site::new();
    fs::write(&s.state, "2\n").unwrap();
    let zeros = s.dir.path().join("zeros.img");
    fs::write(&zeros, vec![0u8; 1 << 20]).unwrap();
    let o = s.backup(&s.backup, &zeros, None);
    assert!(!o.success());
    let stderr = o.stderr.as_str();
    assert!(stderr.contains("era_invalidate: "), "{stderr}");
    assert_eq!(s.state().as_deref(), Some("2\n"));
    assert!(fs::read(&s.backup).unwrap().iter().all(|&b| b == 0));
    // A saved era that is not a number is refused before anything is read.
    fs::write(&s.state, "").unwrap();
    let o = s.backup(&s.backup, &s.meta, None);
    assert!(!o.success());
    assert_eq!(s.state().as_deref(), Some(""));
}

#[test]
fn an_interrupted_run_is_simply_run_again() {
    if !have_jq() {
        return;
    }
    let s = Site::new();
    fs::write(&s.state, "0\n").unwrap();
    // A dd that lets the first copy through, then stops the script as a signal would.
    let stand_ins = s.dir.path().join("bin");
    fs::create_dir(&stand_ins).unwrap();
    let real_dd = outcome(Command::new("bash").args(["-c", "command -v dd"])).stdout;
    let counter = s.dir.path().join("dd-calls");
    fs::write(
        stand_ins.join("dd"),
        format!(
            "#!/bin/bash\nn=$(cat '{c}' 2>/dev/null || echo 0)\necho $((n + 1)) > '{c}'\n\
             if [ \"$n\" -ge 1 ]; then kill -TERM $PPID; exit 1; fi\nexec {dd} \"$@\"\n",
            c = counter.display(),
            dd = real_dd.trim()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(stand_ins.join("dd"), fs::Permissions::from_mode(0o755)).unwrap();
    // Everything is listed in one range at era 0: stop a run that has two ranges instead.
    fs::write(&s.state, "3\n").unwrap();
    assert!(s.listed_since(3).len() >= 2);
    let o = s.backup(&s.backup, &s.meta, Some(&stand_ins));
    assert!(!o.success());
    assert_eq!(s.state().as_deref(), Some("3\n"));
    // The same run again, uninterrupted, finishes the job.
    let o = s.backup(&s.backup, &s.meta, None);
    assert!(o.success(), "{}", o.stderr);
    let backup = fs::read(&s.backup).unwrap();
    for (b, e) in s.listed_since(3) {
        assert!(backup[b..e] == s.origin_bytes[b..e], "range {b}..{e}");
    }
    assert_eq!(s.state().as_deref(), Some("4\n"));
}

/// The step-by-step recipe: the script reads a snapshot held by hand (`--metadata-snapshot`)
/// and copies what the snapshot lists, not what was written after it.
#[test]
fn the_backup_recipe_reads_a_held_snapshot() {
    if !have_jq() {
        return;
    }
    let s = Site::new();
    fs::write(&s.meta, fixture("era-snap-held.removed-snap-held.img.gz")).unwrap();
    fs::write(&s.state, "2\n").unwrap();
    let o = outcome(
        script(&recipe("incremental-backup.sh"), None)
            .args([&s.state, &s.origin, &s.backup])
            .arg("--metadata-snapshot")
            .arg(&s.meta),
    );
    assert!(o.success(), "{}", o.stderr);
    // The snapshot lists blocks 64..96 since era 2; the live superblock lists up to 112.
    let backup = fs::read(&s.backup).unwrap();
    let (b, e) = (64 * 65536, 96 * 65536);
    assert!(backup[b..e] == s.origin_bytes[b..e]);
    assert!(backup[..b].iter().chain(&backup[e..]).all(|&x| x == 0));
    assert_eq!(s.state().as_deref(), Some("3\n"));
}

/// A directory holding a stand-in for `dmsetup`: it logs each call's arguments to
/// `dmsetup.log` beside it, prints an era target's status line with the era in `era` beside
/// it (a linear target's when that file is missing), and fails a call whose words contain
/// the content of `fail` beside it.
fn fake_dmsetup(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let d = dir.display();
    let text = format!(
        "#!/bin/bash\n\
         echo \"$*\" >> '{d}/dmsetup.log'\n\
         if [ -e '{d}/fail' ] && [[ \"$*\" == *\"$(cat '{d}/fail')\"* ]]; then exit 1; fi\n\
         if [ \"$1\" = status ]; then\n\
           if [ -e '{d}/era' ]; then echo \"0 131072 era 8 20/4096 $(cat '{d}/era') -\";\n\
           else echo '0 131072 linear'; fi\n\
         fi\n"
    );
    fs::write(bin.join("dmsetup"), text).unwrap();
    fs::set_permissions(bin.join("dmsetup"), fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn dmsetup_calls(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("dmsetup.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn run_script(name: &str, args: &[&Path], stand_ins: &Path) -> Outcome {
    outcome(script(&recipe(name), Some(stand_ins)).args(args))
}

/// The step-by-step recipe sends checkpoint and take_metadata_snap, copies what the
/// snapshot lists, and drops the snapshot on every way out: success, a failed
/// era_invalidate, a signal.
#[test]
fn the_held_snapshot_recipe_drops_its_snapshot_on_every_way_out() {
    if !have_jq() {
        return;
    }
    let s = Site::new();
    let bin = fake_dmsetup(s.dir.path());
    fs::write(&s.meta, fixture("era-snap-held.removed-snap-held.img.gz")).unwrap();
    fs::write(&s.state, "2\n").unwrap();
    let name = Path::new("era0");
    let args = [name, &s.meta, &s.state, &s.origin, &s.backup];
    let o = run_script("backup-held-snapshot.sh", &args, &bin);
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(
        dmsetup_calls(s.dir.path()),
        [
            "message era0 0 checkpoint",
            "message era0 0 take_metadata_snap",
            "message era0 0 drop_metadata_snap"
        ]
    );
    let backup = fs::read(&s.backup).unwrap();
    let (b, e) = (64 * 65536, 96 * 65536);
    assert!(backup[b..e] == s.origin_bytes[b..e]);
    assert_eq!(s.state().as_deref(), Some("3\n"));

    // era_invalidate fails: the snapshot is dropped, the saved era stays.
    fs::remove_file(s.dir.path().join("dmsetup.log")).unwrap();
    let zeros = s.dir.path().join("zeros.img");
    fs::write(&zeros, vec![0u8; 1 << 20]).unwrap();
    let args = [name, &zeros, &s.state, &s.origin, &s.backup];
    let o = run_script("backup-held-snapshot.sh", &args, &bin);
    assert!(!o.success());
    let calls = dmsetup_calls(s.dir.path());
    assert_eq!(
        calls.last().map(String::as_str),
        Some("message era0 0 drop_metadata_snap")
    );
    assert_eq!(s.state().as_deref(), Some("3\n"));

    // The script is stopped by SIGTERM during the copy: dropped too.
    fs::remove_file(s.dir.path().join("dmsetup.log")).unwrap();
    fs::write(&s.state, "2\n").unwrap();
    // A dd that stops the recipe (its parent's parent) as an operator's kill would.
    fs::write(
        bin.join("dd"),
        "#!/bin/bash\nkill -TERM \"$(awk '{print $4}' /proc/$PPID/stat)\"\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(bin.join("dd"), fs::Permissions::from_mode(0o755)).unwrap();
    let args = [name, &s.meta, &s.state, &s.origin, &s.backup];
    let o = run_script("backup-held-snapshot.sh", &args, &bin);
    assert_eq!(o.code, 143, "{}", o.stderr);
    let calls = dmsetup_calls(s.dir.path());
    assert_eq!(
        calls.last().map(String::as_str),
        Some("message era0 0 drop_metadata_snap")
    );
    assert_eq!(s.state().as_deref(), Some("2\n"));
}

/// Before a vendor snapshot: a checkpoint, then the era from the status line (its sixth
/// field), saved whole; a target that is not an era target saves nothing.
#[test]
fn the_vendor_snapshot_recipe_saves_the_era_after_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_dmsetup(dir.path());
    let file = dir.path().join("snap-1.era");
    fs::write(dir.path().join("era"), "5").unwrap();
    let o = run_script("vendor-snapshot-era.sh", &[Path::new("era0"), &file], &bin);
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(fs::read_to_string(&file).unwrap(), "5\n");
    assert_eq!(
        dmsetup_calls(dir.path()),
        ["message era0 0 checkpoint", "status era0"]
    );
    // The checkpoint fails: nothing is saved, the old file stays.
    fs::write(dir.path().join("fail"), "checkpoint").unwrap();
    fs::write(dir.path().join("era"), "6").unwrap();
    let o = run_script("vendor-snapshot-era.sh", &[Path::new("era0"), &file], &bin);
    assert!(!o.success());
    assert_eq!(fs::read_to_string(&file).unwrap(), "5\n");
    // The era file named as a directory: refused, nothing saved inside it.
    fs::remove_file(dir.path().join("fail")).unwrap();
    let o = run_script(
        "vendor-snapshot-era.sh",
        &[Path::new("era0"), dir.path()],
        &bin,
    );
    assert_eq!(o.code, 1);
    assert!(o.stderr.as_str().contains("is a directory"));
    // Not an era target.
    fs::remove_file(dir.path().join("era")).unwrap();
    let other = dir.path().join("other.era");
    let o = run_script("vendor-snapshot-era.sh", &[Path::new("lin"), &other], &bin);
    assert_eq!(o.code, 1);
    assert!(!other.exists());
}

/// A `dmsetup` standing in for one cache target, `c0`, as far as the cache recipes see it:
/// its live table in `DIR/table`, a table loaded by `reload` made live by `resume`, its dirty
/// blocks in `DIR/dirty` (none once the cleaner policy is live), the kernel's refusal to
/// resume into passthrough with dirty blocks recorded. Every call is logged; a call
/// containing the text of `DIR/fail` fails.
fn fake_cache_dmsetup(dir: &Path, table: &str, dirty: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(dir.join("table"), format!("{table}\n")).unwrap();
    fs::write(dir.join("dirty"), format!("{dirty}\n")).unwrap();
    let d = dir.display();
    let text = format!(
        r#"#!/bin/bash
echo "$*" >> '{d}/dmsetup.log'
if [ -e '{d}/fail' ] && [[ "$*" == *"$(cat '{d}/fail')"* ]]; then exit 1; fi
case $1 in
table) cat '{d}/table' ;;
status)
    read -r -a t < '{d}/table'
    mode=writeback
    for w in "${{t[@]}}"; do case $w in writethrough|passthrough) mode=$w ;; esac; done
    echo "0 ${{t[1]}} cache 8 27/4096 ${{t[6]}} 12/1024 0 0 0 0 0 0 $(cat '{d}/dirty') 1 $mode 2 migration_threshold 2048 smq 0 rw -"
    ;;
reload) echo "$4" > '{d}/inactive' ;;
resume)
    if [ -e '{d}/inactive' ]; then
        mv '{d}/inactive' '{d}/table'
        grep -q cleaner '{d}/table' && echo 0 > '{d}/dirty'
        if grep -q passthrough '{d}/table' && [ "$(cat '{d}/dirty')" != 0 ]; then exit 1; fi
    fi
    ;;
esac
exit 0
"#
    );
    fs::write(bin.join("dmsetup"), text).unwrap();
    fs::set_permissions(bin.join("dmsetup"), fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

const WRITEBACK: &str = "0 131072 cache 254:1 254:2 254:3 128 2 metadata2 writeback smq 0";

/// Edits the stand-in `dmsetup` in `bin`: `from` in its script becomes `to`.
fn patch_fake(bin: &Path, from: &str, to: &str) {
    let fake = bin.join("dmsetup");
    let text = fs::read_to_string(&fake).unwrap().replace(from, to);
    fs::write(&fake, text).unwrap();
}

/// A clean cache in writeback mode (`fake_cache_dmsetup`) whose reloads leave a block
/// dirty: the kernel's check at the resume into passthrough fails.
fn cache_refusing_passthrough(dir: &Path) -> PathBuf {
    let bin = fake_cache_dmsetup(dir, WRITEBACK, 0);
    let dirty = format!("reload) echo 1 > '{}/dirty'; echo \"$4\"", dir.display());
    patch_fake(&bin, "reload) echo \"$4\"", &dirty);
    bin
}

/// Before a rollback: the cache's table is saved, its dirty blocks written back with the
/// cleaner policy, and the same table made live in passthrough mode.
#[test]
fn the_passthrough_recipe_cleans_the_cache_then_reloads_it_in_passthrough() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_cache_dmsetup(dir.path(), WRITEBACK, 7);
    let saved = dir.path().join("c0.table");
    let o = run_script("cache-passthrough.sh", &[Path::new("c0"), &saved], &bin);
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(
        fs::read_to_string(&saved).unwrap(),
        format!("{WRITEBACK}\n")
    );
    let reloads: Vec<String> = dmsetup_calls(dir.path())
        .into_iter()
        .filter(|c| c.starts_with("reload") || c.starts_with("suspend") || c.starts_with("resume"))
        .collect();
    assert_eq!(
        reloads,
        [
            "suspend c0",
            "reload c0 --table 0 131072 cache 254:1 254:2 254:3 128 2 metadata2 writeback cleaner 0",
            "resume c0",
            "suspend c0",
            "reload c0 --table 0 131072 cache 254:1 254:2 254:3 128 2 metadata2 passthrough smq 0",
            "resume c0",
        ]
    );
    // Run again: already in passthrough, the saved table is kept.
    let o = run_script("cache-passthrough.sh", &[Path::new("c0"), &saved], &bin);
    assert!(o.success(), "{}", o.stderr);
    assert!(
        o.stdout.contains("already in passthrough mode"),
        "{}",
        o.stdout
    );
    assert_eq!(
        fs::read_to_string(&saved).unwrap(),
        format!("{WRITEBACK}\n")
    );

    // A clean writethrough cache goes straight to passthrough.
    let dir = tempfile::tempdir().unwrap();
    let through = "0 8192 cache 254:1 254:2 254:3 64 1 writethrough smq 0";
    let bin = fake_cache_dmsetup(dir.path(), through, 0);
    let o = run_script("cache-passthrough.sh", &[Path::new("c0"), &saved], &bin);
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(
        fs::read_to_string(dir.path().join("table")).unwrap(),
        "0 8192 cache 254:1 254:2 254:3 64 1  passthrough smq 0\n"
    );
}

/// The kernel refuses passthrough (a block still dirty when the reload's suspend recorded
/// it): the saved table is made live again; a target that is not one cache is refused
/// before anything is saved or reloaded.
#[test]
fn the_passthrough_recipe_puts_the_table_back_when_the_kernel_refuses() {
    let dir = tempfile::tempdir().unwrap();
    // Dirty again after the status read 0.
    let bin = cache_refusing_passthrough(dir.path());
    let saved = dir.path().join("c0.table");
    let o = run_script("cache-passthrough.sh", &[Path::new("c0"), &saved], &bin);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("could not enter passthrough mode"),
        "{}",
        o.stderr
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("table")).unwrap(),
        format!("{WRITEBACK}\n")
    );
    assert_eq!(dmsetup_calls(dir.path()).last().unwrap(), "resume c0");

    let dir = tempfile::tempdir().unwrap();
    let bin = fake_cache_dmsetup(dir.path(), "0 8192 linear 254:3 0", 0);
    let o = run_script("cache-passthrough.sh", &[Path::new("c0"), &saved], &bin);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("not one cache target"), "{}", o.stderr);
    assert!(!dmsetup_calls(dir.path())
        .iter()
        .any(|c| c.starts_with("reload")));
}

/// The kernel refuses passthrough and then the table the cache had cannot be loaded again:
/// the cache is resumed all the same, and the line says what is left to see to.
#[test]
fn the_passthrough_recipe_resumes_the_cache_when_its_table_cannot_be_put_back() {
    let dir = tempfile::tempdir().unwrap();
    let bin = cache_refusing_passthrough(dir.path());
    let saved = dir.path().join("c0.table");
    fs::write(dir.path().join("fail"), "writeback smq").unwrap();
    let o = run_script("cache-passthrough.sh", &[Path::new("c0"), &saved], &bin);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("could not enter passthrough mode, nor make the table it had before"),
        "{}",
        o.stderr
    );
    let calls = dmsetup_calls(dir.path());
    assert!(
        calls.ends_with(&[
            format!("reload c0 --table {WRITEBACK}"),
            "resume c0".to_string()
        ]),
        "{calls:?}"
    );
    assert_eq!(
        fs::read_to_string(&saved).unwrap(),
        format!("{WRITEBACK}\n")
    );
}

/// A cache whose status has no dirty count (a failed cache's says only Fail) while its
/// dirty blocks are written back: the script stops at once, saying where the table is
/// saved, rather than wait for a count. The stand-in gives a count again after three Fail
/// lines, so that a script that waits finishes, and fails this test, instead of hanging.
#[test]
fn the_passthrough_recipe_stops_when_the_status_has_no_dirty_count() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_cache_dmsetup(dir.path(), WRITEBACK, 7);
    let saved = dir.path().join("c0.table");
    let d = dir.path().display();
    let fail_three_times = format!(
        "status)\n    n=$(cat '{d}/fails' 2>/dev/null || echo 0)\n    \
         if grep -q cleaner '{d}/table' && [ \"$n\" -lt 3 ]; then\n        \
         echo $((n + 1)) > '{d}/fails'; echo '0 131072 cache Fail'; exit 0\n    fi\n"
    );
    patch_fake(&bin, "status)\n", &fail_three_times);
    let o = run_script("cache-passthrough.sh", &[Path::new("c0"), &saved], &bin);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stderr
            .contains("c0: no dirty count in its status: 0 131072 cache Fail"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("saved in"), "{}", o.stderr);
    assert_eq!(fs::read_to_string(dir.path().join("fails")).unwrap(), "1\n");
    assert_eq!(
        fs::read_to_string(&saved).unwrap(),
        format!("{WRITEBACK}\n")
    );
    assert!(!dmsetup_calls(dir.path())
        .iter()
        .any(|c| c.contains("passthrough")));
}

/// A run stopped while the cleaner policy wrote dirty blocks back, run again: the table it
/// saved stays saved (not the cleaner's), and passthrough comes with the saved policy; with
/// no saved table it is refused, nothing reloaded.
#[test]
fn the_passthrough_recipe_run_again_after_a_stop_keeps_the_saved_table() {
    let dir = tempfile::tempdir().unwrap();
    let cleaner = "0 131072 cache 254:1 254:2 254:3 128 2 metadata2 writeback cleaner 0";
    let bin = fake_cache_dmsetup(dir.path(), cleaner, 3);
    let saved = dir.path().join("c0.table");
    fs::write(&saved, format!("{WRITEBACK}\n")).unwrap();
    // The blocks are written back while it waits.
    let written_back = format!("status)\n    echo 0 > '{}/dirty'\n", dir.path().display());
    patch_fake(&bin, "status)\n", &written_back);
    let o = run_script("cache-passthrough.sh", &[Path::new("c0"), &saved], &bin);
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(
        fs::read_to_string(&saved).unwrap(),
        format!("{WRITEBACK}\n")
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("table")).unwrap(),
        "0 131072 cache 254:1 254:2 254:3 128 2 metadata2 passthrough smq 0\n"
    );

    let dir = tempfile::tempdir().unwrap();
    let bin = fake_cache_dmsetup(dir.path(), cleaner, 0);
    let missing = dir.path().join("none.table");
    let o = run_script("cache-passthrough.sh", &[Path::new("c0"), &missing], &bin);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("holds no saved table"), "{}", o.stderr);
    assert!(!dmsetup_calls(dir.path())
        .iter()
        .any(|c| c.starts_with("reload") || c.starts_with("suspend")));
}

/// After a rollback: era_invalidate invalidates the cache's stale blocks, then the saved
/// table is made live again; when era_invalidate fails (here: no live targets), nothing is
/// reloaded and the cache stays in passthrough mode; a bad era or table file is refused
/// first.
#[test]
fn the_rollback_recipe_invalidates_then_reloads_or_leaves_passthrough() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let passthrough = "0 131072 cache 254:1 254:2 254:3 128 2 metadata2 passthrough smq 0";
    let bin = fake_cache_dmsetup(dir.path(), passthrough, 0);
    let era = dir.path().join("snap-1.era");
    fs::write(&era, "3\n").unwrap();
    let saved = dir.path().join("c0.table");
    fs::write(&saved, format!("{WRITEBACK}\n")).unwrap();
    let args = [era.as_path(), Path::new("era0"), Path::new("c0"), &saved];

    // The real era_invalidate: no era target here.
    let o = run_script("stale-after-rollback.sh", &args, &bin);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("era_invalidate: era0: error: "),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("the cache stays in passthrough mode"),
        "{}",
        o.stderr
    );
    assert!(!dmsetup_calls(dir.path())
        .iter()
        .any(|c| c.starts_with("reload")));
    // The same failure with the cache not in passthrough (cache-passthrough.sh not run, or
    // another table loaded since): the script says so instead of claiming passthrough. Nor
    // does it claim a mode when the cache's table cannot be read (a wrong name, say).
    let writeback = format!("{WRITEBACK}\n");
    for (file, content, said, unsaid) in [
        (
            "table",
            writeback.as_str(),
            "c0: nothing reloaded; the cache is not in passthrough mode and may read",
            "stays in passthrough",
        ),
        (
            "fail",
            "table c0",
            "c0: nothing reloaded; its table could not be read",
            "passthrough mode",
        ),
    ] {
        fs::write(dir.path().join(file), content).unwrap();
        let o = run_script("stale-after-rollback.sh", &args, &bin);
        assert_eq!(o.code, 1);
        assert!(o.stderr.contains(said), "{}", o.stderr);
        assert!(!o.stderr.contains(unsaid), "{}", o.stderr);
    }
    fs::remove_file(dir.path().join("fail")).unwrap();
    fs::write(dir.path().join("table"), format!("{passthrough}\n")).unwrap();

    // A stand-in that answers as the tool does.
    let log = dir.path().join("era_invalidate.args");
    fs::write(
        bin.join("era_invalidate"),
        format!(
            "#!/bin/bash\necho \"$*\" > '{}'\necho '{{\"ranges\":[],\"cache\":{{\"device\":\"c0\",\"invalidated\":4,\"not_cached\":2}}}}'\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        bin.join("era_invalidate"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let o = run_script("stale-after-rollback.sh", &args, &bin);
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "--live era0 --written-since 3 --cache c0\n"
    );
    assert!(
        o.stdout.contains("4 cache blocks invalidated"),
        "{}",
        o.stdout
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("table")).unwrap(),
        format!("{WRITEBACK}\n")
    );

    // The saved table cannot be loaded: the cache is resumed, still in passthrough.
    fs::write(dir.path().join("fail"), "reload").unwrap();
    let o = run_script("stale-after-rollback.sh", &args, &bin);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("could not be made live"), "{}", o.stderr);
    assert_eq!(dmsetup_calls(dir.path()).last().unwrap(), "resume c0");
    fs::remove_file(dir.path().join("fail")).unwrap();

    // A bad era file, a table file that is no cache table: refused, era_invalidate not run.
    fs::remove_file(&log).unwrap();
    fs::write(&era, "").unwrap();
    let o = run_script("stale-after-rollback.sh", &args, &bin);
    assert_eq!(o.code, 1);
    fs::write(&era, "3\n").unwrap();
    fs::write(&saved, "0 8192 linear 254:3 0\n").unwrap();
    let o = run_script("stale-after-rollback.sh", &args, &bin);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("not a cache table"), "{}", o.stderr);
    assert!(!log.exists());
}

/// The README shows each recipe script as it is, line for line.
#[test]
fn the_readme_shows_the_recipe_scripts_as_they_are() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    for name in RECIPES {
        let text = fs::read_to_string(recipe(name)).unwrap();
        let indented: String = text
            .lines()
            .map(|l| {
                if l.is_empty() {
                    "\n".to_string()
                } else {
                    format!("    {l}\n")
                }
            })
            .collect();
        assert!(
            readme.contains(&indented),
            "README.md does not show examples/recipes/{name} as it is"
        );
    }
}

/// The operator's mistakes with the backup recipe: a frozen origin cut short (dd would stop
/// at its end without a word), a backup that does not exist (dd would create a stray file),
/// the origin given as the backup, a state file that is a directory or lies in no
/// directory. Each is refused before anything is copied, and the saved era stays.
#[test]
fn the_backup_recipe_refuses_the_wrong_files_before_copying() {
    if !have_jq() {
        return;
    }
    let s = Site::new();
    fs::write(&s.state, "2\n").unwrap();
    let short = s.dir.path().join("short.img");
    fs::write(&short, &s.origin_bytes[..1 << 20]).unwrap();
    let missing = s.dir.path().join("typo.img");
    let run_with = |state: &Path, origin: &Path, backup: &Path| {
        outcome(
            script(&recipe("incremental-backup.sh"), None).args([state, origin, backup, &s.meta]),
        )
    };
    let backup_before = fs::read(&s.backup).unwrap();
    for (state, origin, backup, words) in [
        (
            &s.state,
            &short,
            &s.backup,
            "but the metadata tracks an origin of at least",
        ),
        (&s.state, &s.origin, &missing, "create the backup first"),
        (
            &s.state,
            &s.origin,
            &s.origin,
            "is the frozen origin itself",
        ),
        (
            &s.dir.path().to_path_buf(),
            &s.origin,
            &s.backup,
            "is a directory",
        ),
        (
            &s.dir.path().join("nowhere/era0.next"),
            &s.origin,
            &s.backup,
            "its directory does not exist",
        ),
    ] {
        let o = run_with(state, origin, backup);
        let stderr = o.stderr.as_str();
        assert_eq!(o.code, 1, "{words}: {stderr}");
        assert!(stderr.contains(words), "{words}: {stderr}");
        assert!(!missing.exists(), "a stray backup was made");
        assert!(fs::read(&s.backup).unwrap() == backup_before);
        assert!(fs::read(&s.origin).unwrap() == s.origin_bytes);
        assert_eq!(s.state().as_deref(), Some("2\n"));
    }
}

/// The frozen origin and the backup swapped on a first run (no saved era): the full copy
/// would go over the origin. A backup that holds data is refused then, the origin intact.
#[test]
fn a_first_run_with_the_origin_as_backup_is_refused() {
    if !have_jq() {
        return;
    }
    let s = Site::new();
    let o = outcome(
        script(&recipe("incremental-backup.sh"), None)
            .args([&s.state, &s.backup, &s.origin, &s.meta]),
    );
    let stderr = o.stderr.as_str();
    assert_eq!(o.code, 1, "{stderr}");
    assert!(stderr.contains("Is it the origin?"), "{stderr}");
    assert!(fs::read(&s.origin).unwrap() == s.origin_bytes);
    assert!(s.state().is_none());
}

/// FREEZE makes the frozen origin after era_invalidate has read the metadata (a snapshot
/// made before would miss writes the run lists), and a FREEZE that fails copies and saves
/// nothing.
#[test]
fn the_backup_recipe_freezes_the_origin_after_reading_the_metadata() {
    use std::os::unix::fs::PermissionsExt;
    if !have_jq() {
        return;
    }
    let s = Site::new();
    let bin = s.dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let order = s.dir.path().join("order");
    // An era_invalidate that says when it ran, then runs the real one.
    fs::write(
        bin.join("era_invalidate"),
        format!(
            "#!/bin/bash\necho era_invalidate >> '{}'\nexec '{}' \"$@\"\n",
            order.display(),
            exe("era_invalidate").display()
        ),
    )
    .unwrap();
    fs::set_permissions(
        bin.join("era_invalidate"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let frozen = s.dir.path().join("frozen.img");
    let freeze = format!(
        "echo freeze >> '{}' && cp '{}' '{}'",
        order.display(),
        s.origin.display(),
        frozen.display()
    );
    let run = |freeze: &str| {
        outcome(
            script(&recipe("incremental-backup.sh"), Some(&bin))
                .args([&s.state, &frozen, &s.backup, &s.meta])
                .env("FREEZE", freeze),
        )
    };
    fs::write(&s.state, "2\n").unwrap();
    let o = run("exit 3");
    assert_eq!(o.code, 1);
    assert!(o
        .stderr
        .as_str()
        .contains("FREEZE failed: nothing was copied"));
    assert_eq!(s.state().as_deref(), Some("2\n"));
    assert!(fs::read(&s.backup).unwrap().iter().all(|&b| b == 0));
    fs::remove_file(&order).unwrap();
    let o = run(&freeze);
    assert!(o.success(), "{}", o.stderr);
    assert_eq!(
        fs::read_to_string(&order).unwrap(),
        "era_invalidate\nfreeze\n"
    );
    let backup = fs::read(&s.backup).unwrap();
    for (b, e) in s.listed_since(2) {
        assert!(backup[b..e] == s.origin_bytes[b..e], "range {b}..{e}");
    }
    assert_eq!(s.state().as_deref(), Some("4\n"));
}
