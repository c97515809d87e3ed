#!/usr/bin/env bash
# Before the storage array takes a snapshot of an era target's origin: start a new era and
# save it with the snapshot's name. Every block written after this point, and so every
# block a rollback to the snapshot can make stale, is in that era or a later one.
#
#   vendor-snapshot-era.sh NAME ERA_FILE
#
#   NAME      the era target (dmsetup name)
#   ERA_FILE  where the era is saved (keep it with the snapshot)
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 NAME ERA_FILE" >&2
    exit 2
fi
name=$1 file=$2
if [ -d "$file" ]; then
    echo "$0: $file: is a directory, not the file to keep the era in" >&2
    exit 1
fi

dmsetup message "$name" 0 checkpoint
# `dmsetup status` prints: start length era metadata_block_size used/total current_era
# held_root; the era is the sixth field.
era=$(dmsetup status "$name" | awk '$3 == "era" { print $6 }')
case $era in
'' | *[!0-9]*)
    echo "$0: $name: no era in its status line" >&2
    exit 1
    ;;
esac
printf '%s\n' "$era" >"$file.new"
sync "$file.new"
mv -T "$file.new" "$file"
sync "$(dirname "$file")"
echo "$0: $name: era $era saved in $file; take the snapshot now"
