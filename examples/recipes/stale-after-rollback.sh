#!/usr/bin/env bash
# After the storage array rolled an era target's origin back to a snapshot, under a dm-cache in
# passthrough mode (cache-passthrough.sh): invalidate in the cache every block written in the
# era saved with the snapshot (vendor-snapshot-era.sh) or later, then make the cache's saved
# table live again. If the invalidation fails, nothing is reloaded: a cache left in passthrough
# mode reads nothing stale; see what era_invalidate and this script say, and run this again.
#
#   stale-after-rollback.sh ERA_FILE ERA_TARGET CACHE TABLE_FILE
#
#   ERA_FILE    the era saved with the snapshot
#   ERA_TARGET  the era target (dmsetup name)
#   CACHE       the cache target stacked on it or under it (dmsetup name)
#   TABLE_FILE  the cache's table saved by cache-passthrough.sh
set -euo pipefail

if [ "$#" -ne 4 ]; then
    echo "usage: $0 ERA_FILE ERA_TARGET CACHE TABLE_FILE" >&2
    exit 2
fi
file=$1 era_target=$2 cache=$3 saved=$4

era=$(cat "$file")
case $era in
'' | *[!0-9]*)
    echo "$0: $file: not an era: '$era'" >&2
    exit 1
    ;;
esac
table=$(cat "$saved")
read -r -a t <<<"$table"
if [ "${t[2]:-}" != cache ]; then
    echo "$0: $saved: not a cache table: '$table'" >&2
    exit 1
fi

if ! answer=$(era_invalidate --live "$era_target" --written-since "$era" --cache "$cache"); then
    # era_invalidate said why; the mode the cache is in is read, not assumed (the cache
    # may not have been put in passthrough, or someone may have loaded another table).
    if ! live=$(dmsetup table "$cache"); then
        echo "$0: $cache: nothing reloaded; its table could not be read" >&2
    elif [[ " $live " == *" passthrough "* ]]; then
        echo "$0: $cache: nothing reloaded; the cache stays in passthrough mode" >&2
    else
        echo "$0: $cache: nothing reloaded; the cache is not in passthrough mode and may" \
            "read blocks the rollback made stale: see dmsetup table $cache" >&2
    fi
    exit 1
fi
# The one "invalidated" of era_invalidate's JSON is the cache object's count.
count=${answer#*\"invalidated\":}
echo "$0: $cache: ${count%%[!0-9]*} cache blocks invalidated"
# The cache is resumed whatever happens; a table that cannot be loaded leaves passthrough.
rc=0
dmsetup suspend "$cache"
dmsetup reload "$cache" --table "$table" || rc=$?
dmsetup resume "$cache" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "$0: $cache: the table from $saved could not be made live; see dmsetup table $cache" >&2
    exit 1
fi
echo "$0: $cache: its table from $saved is live again"
