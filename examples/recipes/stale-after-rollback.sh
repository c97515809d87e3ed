#!/usr/bin/env bash
# After the storage array rolled an era target's origin back to a snapshot: list the byte
# ranges of the origin that may be stale in a cache above it, every block written in the
# era saved when the snapshot was taken (vendor-snapshot-era.sh) or later. Run it with the
# cache in passthrough mode, after the rollback; the list is written whole or not at all.
#
#   stale-after-rollback.sh ERA_FILE OUTPUT SOURCE...
#
#   ERA_FILE   the era saved with the snapshot
#   OUTPUT     the list: one "BEGIN END" line of bytes per range (end exclusive)
#   SOURCE...  what era_invalidate reads: --live NAME (a live target), or METADATA
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 ERA_FILE OUTPUT SOURCE..." >&2
    exit 2
fi
file=$1 output=$2
shift 2

era=$(cat "$file")
case $era in
'' | *[!0-9]*)
    echo "$0: $file: not an era: '$era'" >&2
    exit 1
    ;;
esac
era_invalidate "$@" --written-since "$era" --format text --units bytes -o "$output"
echo "$0: $(wc -l <"$output") ranges in $output; invalidate them in the cache, then resume it"
