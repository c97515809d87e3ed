#!/usr/bin/env bash
# Before the storage array rolls an origin back under a dm-cache: put the cache in passthrough
# mode, the only one in which the kernel invalidates cache blocks, and one that reads nothing
# stale (every read goes to the origin). The kernel enters passthrough only with every block
# clean, so dirty blocks are written back first, with the cleaner policy. The table in force
# is saved, to be made live again once the cache is invalidated (stale-after-rollback.sh).
#
#   cache-passthrough.sh CACHE TABLE_FILE
#
#   CACHE       the cache target (dmsetup name)
#   TABLE_FILE  where its table is saved
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 CACHE TABLE_FILE" >&2
    exit 2
fi
name=$1 file=$2

# 0 LENGTH cache META FAST ORIGIN BLOCK_SIZE #FEATURES FEATURE... POLICY #ARGS ARG...
table=$(dmsetup table "$name")
read -r -a t <<<"$table"
if [ "$(wc -l <<<"$table")" -ne 1 ] || [ "${#t[@]}" -lt 10 ] || [ "${t[2]}" != cache ]; then
    echo "$0: $name: not one cache target: $table" >&2
    exit 1
fi
nf=${t[7]}
mode=writeback others=()
for f in "${t[@]:8:nf}"; do
    case ${f,,} in
    writeback | writethrough | passthrough) mode=${f,,} ;;
    *) others+=("$f") ;;
    esac
done
if [ "$mode" = passthrough ]; then
    echo "$0: $name: already in passthrough mode; $file left as it is"
    exit 0
fi
head=("${t[@]:0:7}")
policy=("${t[@]:8+nf}")
# The cleaner policy live: a run of this script was stopped while it wrote dirty blocks back.
# The table to go back to is the one that run saved, not this one.
again=no
if [ "${policy[0]}" = cleaner ]; then
    if [ ! -s "$file" ]; then
        echo "$0: $name: its policy is cleaner and $file holds no saved table" >&2
        exit 1
    fi
    read -r -a saved <<<"$(cat "$file")"
    policy=("${saved[@]:8+${saved[7]}}")
    again=yes
fi

# live TABLE: makes TABLE live; the cache is resumed whatever happens.
live() {
    local rc=0
    dmsetup suspend "$name"
    dmsetup reload "$name" --table "$1" || rc=$?
    dmsetup resume "$name" || rc=$?
    return "$rc"
}
# dirty: the dirty blocks the status counts (its 14th field). A status without the count (a
# failed cache's says only Fail) stops the script rather than wait for it forever.
dirty() {
    local s n
    s=$(dmsetup status "$name")
    n=$(awk '{ print $14 }' <<<"$s")
    if ! [[ $n =~ ^[0-9]+$ ]]; then
        echo "$0: $name: no dirty count in its status: $s" >&2
        echo "$0: $name: its table before this script is saved in $file" >&2
        exit 1
    fi
    echo "$n"
}

if [ "$again" = no ]; then
    printf '%s\n' "$table" >"$file.new"
    sync "$file.new"
    mv -T "$file.new" "$file"
fi

n=$(dirty)
if [ "$n" != 0 ]; then
    echo "$0: $name: writing back $n dirty blocks with the cleaner policy"
    [ "$again" = yes ] || live "${head[*]} $((${#others[@]} + 1)) ${others[*]} $mode cleaner 0"
    # Not in the loop's condition, where a failed dirty would not stop the script.
    while :; do
        n=$(dirty)
        [ "$n" = 0 ] && break
        sleep 1
    done
fi
# The suspend of this reload records every block clean, which the resume checks.
if ! live "${head[*]} $((${#others[@]} + 1)) ${others[*]} passthrough ${policy[*]}"; then
    # A failed resume leaves the cache suspended without its mappings: the table it had
    # when this script started brings them back.
    if dmsetup reload "$name" --table "$table" && dmsetup resume "$name"; then
        echo "$0: $name: could not enter passthrough mode; the table it had before is live" \
            "again (its table before this script is saved in $file)" >&2
    else
        dmsetup resume "$name" || true
        echo "$0: $name: could not enter passthrough mode, nor make the table it had before" \
            "live again: see dmsetup info $name (it may still be suspended); its table" \
            "before this script is saved in $file" >&2
    fi
    exit 1
fi
echo "$0: $name: in passthrough mode; roll the origin back, then run stale-after-rollback.sh"
