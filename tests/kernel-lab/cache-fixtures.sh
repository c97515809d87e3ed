# cache-fixtures: dm-cache metadata written by the kernel, version 1 and version 2
# (`metadata2`), with the kernel's own counts of cached and dirty blocks. Run with
# tests/kernel-lab/run.sh cache-fixtures; its images are kept as fixtures in
# tests/fixtures/kernel/ (tests/cache_fixtures.rs reads them), and those of a run with
# KLAB_KERNEL_PKG=linux-image-6.12.100+deb12-amd64 in tests/fixtures/kernel/6.12/.
TARGET=cache
DESCRIPTION="Two caches in turn over one 64 MiB origin and one 64 MiB cache device, 128-sector (64 KiB) blocks: 1024 cache blocks, 1024 origin blocks. Each: writeback smq; whole-block writes (cached dirty at once, more than one mapping-array block of 509); status (which commits), capture while live (not shut down cleanly); suspend, status, capture (dirty); reload and wait until written back (clean); more whole-block writes (dirty); suspend, status, then remove while suspended (no further metadata write), the image saved. Version 1 on meta1 (no feature), version 2 on meta2 (metadata2)."
DISKS="meta1:8M meta2:8M fast:64M origin:64M"
SAVE="meta1 meta2"

# ---- guest side ----
CACHE_BS=128

# cache_status NAME -- records `dmsetup status NAME`; sets MAPPED and DIRTY
cache_status() {
    local s
    s=$(dmsetup status "$1") || die_lab "dmsetup status $1 failed"
    ev status "$SEQ" "$1" "$s"
    # 0 <len> cache <md bs> <used>/<total> <bs> <mapped>/<cblocks> <rh> <rm> <wh> <wm>
    #   <demotions> <promotions> <dirty> ...
    set -- $s
    MAPPED=${7%/*}
    DIRTY=${14}
}

cache_write() { # NAME BLOCK COUNT -- direct whole-block writes
    step write "dd if=/dev/zero of=/dev/mapper/$1 bs=$((CACHE_BS * 512)) seek=$2 count=$3 oflag=direct conv=notrunc"
    dd if=/dev/zero of="/dev/mapper/$1" bs=$((CACHE_BS * 512)) seek="$2" count="$3" \
        oflag=direct conv=notrunc 2>/dev/null || die_lab "write to block $2 failed"
}

cache_suspend() { # NAME
    step suspend "dmsetup suspend $1"
    dmsetup suspend "$1" || die_lab "dmsetup suspend $1 failed"
    cache_status "$1"
}

cache_resume() { # NAME
    step resume "dmsetup resume $1"
    dmsetup resume "$1" || die_lab "dmsetup resume $1 failed"
}

cache_wait_clean() { # NAME -- until the kernel reports no dirty block (60 s at most)
    local t=0
    step wait "wait until dmsetup status $1 reports 0 dirty blocks"
    while :; do
        cache_status "$1"
        [ "$DIRTY" = 0 ] && break
        [ $t -ge 600 ] && die_lab "cache $1 still has $DIRTY dirty blocks"
        sleep 0.1
        t=$((t + 1))
    done
}

one_cache() { # NAME META_DISK FEATURES...
    local name=$1 metadisk=$2 table
    shift 2
    table="0 $(blockdev --getsz "$(dev origin)") cache $(dev "$metadisk") $(dev fast) $(dev origin) $CACHE_BS $# $* smq 0"
    step create "dmsetup create $name --table '$table'"
    ev table "$SEQ" "$name" "$table"
    dmsetup create "$name" --table "$table" || die_lab "dmsetup create $name failed"
    cache_write "$name" 0 520
    cache_write "$name" 600 8
    step status "dmsetup status $name"
    cache_status "$name"
    capture "$metadisk" "$metadisk-live" "live, after a status (a commit): not shut down cleanly"
    cache_suspend "$name"
    capture "$metadisk" "$metadisk-dirty" "suspended after the first writes: every cached block dirty"
    cache_resume "$name"
    step reload "dmsetup suspend $name; dmsetup reload $name --table '$table'; dmsetup resume $name"
    dmsetup suspend "$name" && dmsetup reload "$name" --table "$table" &&
        dmsetup resume "$name" || die_lab "reload of $name failed"
    ev table "$SEQ" "$name" "$table"
    cache_wait_clean "$name"
    cache_write "$name" 300 4
    cache_suspend "$name"
    dm_remove "$name"
}

scenario() {
    one_cache c1 meta1 writeback
    one_cache c2 meta2 writeback metadata2
}
