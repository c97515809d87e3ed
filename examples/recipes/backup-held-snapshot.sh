#!/usr/bin/env bash
# Incremental backup with the kernel's messages sent by hand: what
# `era_invalidate --live NAME --checkpoint` does in one step, for a script that must send
# them itself. The snapshot is dropped on every way out that a shell can catch.
#
#   backup-held-snapshot.sh NAME METADATA_DEV STATE FROZEN_ORIGIN BACKUP
#
#   NAME           the era target (dmsetup name)
#   METADATA_DEV   its metadata device (the first device of its table line)
#   STATE, FROZEN_ORIGIN, BACKUP   as for incremental-backup.sh, FREEZE too: a snapshot
#                  of the origin is made after take_metadata_snap, never before
set -euo pipefail

if [ "$#" -ne 5 ]; then
    echo "usage: $0 NAME METADATA_DEV STATE FROZEN_ORIGIN BACKUP" >&2
    exit 2
fi
name=$1 meta=$2 state=$3 origin=$4 backup=$5
here=$(dirname "$0")

dmsetup message "$name" 0 checkpoint # the next run starts from a new era
dmsetup message "$name" 0 take_metadata_snap
trap 'dmsetup message "$name" 0 drop_metadata_snap' EXIT
# A signal ends the script through its EXIT trap, so the snapshot is dropped then too.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
# The era saved for the next run is the snapshot's own (next_written_since).
"$here/incremental-backup.sh" "$state" "$origin" "$backup" --metadata-snapshot "$meta"
