#!/usr/bin/env bash
# Incremental backup of an era target's origin: copy the blocks written since the last run,
# then save the era the next run starts from. The saved era moves only once every range is
# copied and synced, and atomically: a failed or interrupted run leaves it as it was, and is
# simply run again.
#
#   incremental-backup.sh STATE FROZEN_ORIGIN BACKUP SOURCE...
#
#   STATE          keeps --written-since between runs; missing: copy everything
#   FROZEN_ORIGIN  the origin as it is once era_invalidate has read the metadata: the
#                  origin itself with writes stopped for the whole run, or a snapshot of it
#                  that the command in FREEZE makes, which the script runs right after
#                  era_invalidate (FREEZE='lvcreate -s -n origin-frozen -L 10G vg/origin').
#                  A snapshot taken before the run would miss writes that the run lists,
#                  and the next run starts after them: they would never be copied.
#   BACKUP         the copy, as large as the origin
#   SOURCE...      what era_invalidate reads: --live era0 --checkpoint (a live target),
#                  --metadata-snapshot META (a snapshot held by hand), or META (offline)
set -euo pipefail

if [ "$#" -lt 4 ]; then
    echo "usage: $0 STATE FROZEN_ORIGIN BACKUP SOURCE..." >&2
    exit 2
fi
state=$1 origin=$2 backup=$3
shift 3

fail() {
    echo "$0: $*" >&2
    exit 1
}
size_of() {
    if [ -b "$1" ]; then blockdev --getsize64 "$1"; else stat -L -c %s "$1"; fi
}

# Everything the run will need is looked at before anything is read or written.
[ -d "$state" ] && fail "$state: is a directory, not the file that keeps the era"
[ -d "$(dirname "$state")" ] && [ -w "$(dirname "$state")" ] ||
    fail "$state: its directory does not exist or cannot be written"
[ -e "$backup" ] || fail "$backup: no such file or device: create the backup first, as large as the origin"
[ "$origin" -ef "$backup" ] && fail "$backup: is the frozen origin itself"

next=0
if [ -e "$state" ]; then
    next=$(cat "$state")
elif [ "$(head -c 65536 "$backup" | tr -d '\0' | wc -c)" -ne 0 ]; then
    # A first run copies everything over BACKUP: one that already holds data may be the
    # origin given in its place.
    fail "$backup: holds data, and no era was saved yet ($state): a first run would copy the" \
        "whole origin over it. Is it the origin? If it is the backup, zero its start first:" \
        "dd if=/dev/zero of=$(printf %q "$backup") bs=64K count=1 conv=notrunc"
fi
case $next in
'' | *[!0-9]*) fail "$state: not an era: '$next'" ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A failure here ends the run before anything is copied or saved.
era_invalidate "$@" --written-since "$next" --format json --units bytes -o "$work/run.json"
jq -r '.ranges[] | "\(.begin) \(.end)"' "$work/run.json" >"$work/ranges"
jq -r '.next_written_since' "$work/run.json" >"$work/next"

# The frozen origin is made now, after the metadata was read, so that it holds every write
# the list covers.
if [ -n "${FREEZE:-}" ]; then
    bash -c "$FREEZE" || fail "FREEZE failed: nothing was copied"
fi
[ -e "$origin" ] || fail "$origin: no such file or device"
[ "$origin" -ef "$backup" ] && fail "$backup: is the frozen origin itself"

# The origin the metadata tracks: its exact size from a live target; offline, its blocks
# (the last one may be partial). A frozen origin or a backup shorter than that is the wrong
# device, or an image cut short: dd would stop at its end without a word.
need=$(jq -r '.origin_bytes // ((.nr_blocks - 1) * .block_size_sectors * 512 + 1)' "$work/run.json")
for f in "$origin" "$backup"; do
    have=$(size_of "$f")
    [ "$have" -ge "$need" ] ||
        fail "$f: $have bytes, but the metadata tracks an origin of at least $need bytes"
done

# Each range is copied; the first that fails ends the run (set -e). The backup is synced
# once, after the last.
while read -r begin end; do
    dd if="$origin" of="$backup" bs=1M iflag=skip_bytes,count_bytes oflag=seek_bytes \
        skip="$begin" seek="$begin" count=$((end - begin)) conv=notrunc,nocreat status=none
done <"$work/ranges"
sync "$backup"

# Only now does the next run start later: a new file, synced, renamed over the old one,
# and the rename synced with its directory.
cp "$work/next" "$state.new"
sync "$state.new"
mv -T "$state.new" "$state"
sync "$(dirname "$state")"
echo "$0: copied $(wc -l <"$work/ranges") ranges; next run: --written-since $(cat "$state")"
