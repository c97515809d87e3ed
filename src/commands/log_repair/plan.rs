//! What a log_repair command line asks for, checked before anything is opened: the values
//! clap takes as text are read here, so that one it cannot read is a usage error (exit 2)
//! like any other.

use std::ops::Range;
use std::path::PathBuf;

use super::Args;
use crate::log::repair::parse_ranges;
use crate::log::resync::{Leg, LegSpec};
use crate::log::run::Mode;

/// What a run does, as the command line chose it: a repair, or the undo of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// A repair in this mode.
    Repair(RepairMode),
    /// `--undo FILE`: put back what the run that wrote the backup FILE overwrote.
    Undo(PathBuf),
}

/// The mode of a repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairMode {
    /// `--rewrite-header`.
    RewriteHeader,
    /// `--force-resync`.
    ForceResync,
    /// `--clear-stray-bits`.
    ClearStrayBits,
    /// `--resync`, with the legs.
    Resync,
    /// `--verify`, with the legs.
    Verify,
    /// `--mark-clean`, with its ranges of regions.
    MarkClean(Vec<Range<u64>>),
}

impl RepairMode {
    /// The library's mode, with the legs the resync and the verify work on.
    pub fn with_legs<'a>(self, legs: &'a [Leg<'a>]) -> Mode<'a> {
        match self {
            RepairMode::RewriteHeader => Mode::RewriteHeader,
            RepairMode::ForceResync => Mode::ForceResync,
            RepairMode::ClearStrayBits => Mode::ClearStrayBits,
            RepairMode::Resync => Mode::Resync(legs),
            RepairMode::Verify => Mode::Verify(legs),
            RepairMode::MarkClean(ranges) => Mode::MarkClean(ranges),
        }
    }
}

/// A run's mode and the legs given with `--leg`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What the run does.
    pub task: Task,
    /// The legs in table order (for an undo: those replacing the backup's, or none).
    pub legs: Vec<LegSpec>,
}

/// The plan `args` ask for, or the usage error they make (the message after
/// `log_repair: error: `).
pub fn plan(args: &Args) -> Result<Plan, String> {
    let with_legs = args.resync || args.verify;
    if !args.legs.is_empty() && !with_legs && args.undo.is_none() {
        return Err("--leg is only used by --resync, --verify and --undo".into());
    }
    if with_legs && args.legs.len() < 2 {
        return Err("a mirror has at least 2 legs: give --leg for each, in table order".into());
    }
    let legs = args
        .legs
        .iter()
        .map(|leg| LegSpec::parse(leg))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mark = args.mark_clean.as_deref().map(parse_ranges).transpose();
    let mark = mark.map_err(|e| e.to_string())?;
    if let Some(backup) = &args.undo {
        return Ok(Plan {
            task: Task::Undo(backup.clone()),
            legs,
        });
    }
    let mode = if args.rewrite_header {
        RepairMode::RewriteHeader
    } else if args.force_resync {
        RepairMode::ForceResync
    } else if args.clear_stray_bits {
        RepairMode::ClearStrayBits
    } else if args.resync {
        RepairMode::Resync
    } else if args.verify {
        RepairMode::Verify
    } else if let Some(ranges) = mark {
        RepairMode::MarkClean(ranges)
    } else {
        return Err("give one mode".into());
    };
    Ok(Plan {
        task: Task::Repair(mode),
        legs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::parsed;

    fn plan_of(line: &[&str]) -> Result<Plan, String> {
        plan(&parsed(line))
    }

    fn leg(path: &str, offset: u64) -> LegSpec {
        LegSpec {
            path: path.into(),
            offset,
        }
    }

    const GEOMETRY: [&str; 4] = ["--region-size", "1024", "--length", "2097152"];

    #[test]
    fn each_mode_flag_is_its_task() {
        for (flag, mode) in [
            ("--rewrite-header", RepairMode::RewriteHeader),
            ("--force-resync", RepairMode::ForceResync),
            ("--clear-stray-bits", RepairMode::ClearStrayBits),
        ] {
            let p = plan_of(&["log_repair", flag, "log.img"]).unwrap();
            let task = Task::Repair(mode);
            assert_eq!(p, Plan { task, legs: vec![] });
        }
        let p = plan_of(&["log_repair", "--undo", "log.bak", "log.img"]).unwrap();
        assert_eq!(p.task, Task::Undo("log.bak".into()));
    }

    #[test]
    fn the_legs_are_read_in_table_order_with_their_offsets() {
        for (flag, mode) in [
            ("--resync", RepairMode::Resync),
            ("--verify", RepairMode::Verify),
        ] {
            let mut line = vec!["log_repair", flag, "--leg", "/dev/sdb1", "--leg", "b:2048"];
            line.extend(GEOMETRY);
            line.push("log.img");
            let p = plan_of(&line).unwrap();
            assert_eq!(p.task, Task::Repair(mode));
            assert_eq!(p.legs, vec![leg("/dev/sdb1", 0), leg("b", 2048)]);
        }
    }

    #[test]
    fn the_ranges_to_mark_clean_are_read() {
        let mut line = vec![
            "log_repair",
            "--mark-clean",
            "3..5,9",
            "--unsafe-legs-identical",
        ];
        line.extend(GEOMETRY);
        line.push("log.img");
        let ranges = vec![3..5, 9..10];
        assert_eq!(
            plan_of(&line).unwrap().task,
            Task::Repair(RepairMode::MarkClean(ranges))
        );
    }

    #[test]
    fn legs_are_refused_where_no_mode_uses_them() {
        let line = ["log_repair", "--rewrite-header", "--leg", "a", "log.img"];
        assert_eq!(
            plan_of(&line),
            Err("--leg is only used by --resync, --verify and --undo".into())
        );
        let line = [
            "log_repair",
            "--undo",
            "b",
            "--leg",
            "a",
            "--leg",
            "c",
            "log.img",
        ];
        assert_eq!(plan_of(&line).unwrap().legs, vec![leg("a", 0), leg("c", 0)]);
    }

    #[test]
    fn a_mirror_needs_two_legs() {
        let mut line = vec!["log_repair", "--resync", "--leg", "a"];
        line.extend(GEOMETRY);
        line.push("log.img");
        assert_eq!(
            plan_of(&line),
            Err("a mirror has at least 2 legs: give --leg for each, in table order".into())
        );
    }

    #[test]
    fn unreadable_legs_and_ranges_are_usage_errors() {
        let mut line = vec!["log_repair", "--verify", "--leg", "a", "--leg", ":5"];
        line.extend(GEOMETRY);
        line.push("log.img");
        assert!(plan_of(&line).unwrap_err().contains("empty path"));
        let mut line = vec![
            "log_repair",
            "--mark-clean",
            "5..3",
            "--unsafe-legs-identical",
        ];
        line.extend(GEOMETRY);
        line.push("log.img");
        assert!(plan_of(&line).unwrap_err().contains("empty range"));
    }
}
