# era-cache-rollback: the vendor-rollback procedure end to end with dm-era and dm-cache
# stacked on one origin (issue 22's proof with the kernel): after the origin is rolled back
# underneath a cache in passthrough mode, `era_invalidate --live E --written-since ERA
# --cache C` must leave a cache that reads back the snapshot byte for byte. Run with
# tests/kernel-lab/run.sh era-cache-rollback (opt-in, needs QEMU); checked by
# tests/kernel_lab_cache.rs. Needs bash on the host: the checkpoint is taken by the README's
# recipe examples/recipes/vendor-snapshot-era.sh, carried into the VM with bash to run it.
TARGET=cache
DESCRIPTION="Four cases on a 64 MiB origin (ce1: the targets 131040 sectors long, so that the last era block and the last cache-sized origin block are partial), a 16 MiB cache device and a 64 MiB snapshot disk, each with fresh era and cache metadata: ce1 (cache over era, era blocks 64 sectors, cache blocks 128, metadata version 1), ec2 (era over cache, era 128, cache 64, metadata2), ctl (cache over era, era 128, cache 64, metadata2; the negative control), rcp (era over cache, era 128, cache 64, metadata version 1; the README's recipes cache-passthrough.sh and stale-after-rollback.sh in place of the reloads and the command, dirty blocks left for the first). Each: the cache created in passthrough (empty), the origin filled with random data through the stack, the cache reloaded in writeback; whole cache blocks written (cached) and written back; the era checkpointed by vendor-snapshot-era.sh; the origin disk copied to the snapshot disk; more random data written through the top device (whole cache blocks: cached; a whole and a partial rewrite of blocks cached before) and written back; the cache reloaded in passthrough; partial writes to blocks not cached, one of them to the last 32 sectors (in passthrough: in writeback smq promoted some of them a while later); the snapshot copied back onto the origin disk underneath; the metadata captured while suspended; then era_invalidate --live E --written-since ERA --cache C (ce1, ec2; ec2 runs --dry-run first; ce1 runs it once in writeback first, which must be refused) or only --dry-run (ctl, which also asks for a cache and an era target over another disk, which must be refused); the metadata captured again; the cache reloaded in writeback; the top device compared with the snapshot disk (cmp). At the end of ctl, its cache's metadata (behind dm-delay) is slowed to 300 ms a read and the command is killed with SIGTERM, SIGINT and SIGHUP as soon as the cache is suspended; then, on the same devices, the command runs while the era target holds a metadata snapshot taken with take_metadata_snap (which must be refused before the cache is suspended, the snapshot left held, then dropped), while a writeback table is loaded into the cache as soon as the command has suspended it (metadata reads slowed to 1 s; the table goes live at the command's resume, which must stop it with nothing invalidated), while the cache metadata's device is replaced, as soon as the command has suspended the cache, by dm-flakey failing every write over dm-delay (reads 1 s each): the kernel takes the messages in memory, its next commit fails, it aborts the transaction and flags the metadata needs_check and read-only, and the command must say so (the metadata on the device still mapping the blocks) instead of asking to run again; then once more, which must be refused without suspending the cache; last, the cache is removed and made again in passthrough over the same era target with fresh metadata (its superblock zeroed), its metadata's device is replaced by the error target, so that the kernel's next commit fails and so does its abort's reading of the metadata, and the kernel fails the cache (status Fail): the command must refuse it without suspending it; a poller records whether the cache was seen suspended during the snapshot-held run and the last two. Each carried run is wrapped so that the state of every dm device (dmsetup info) is recorded right after it, before any status read, and a device left suspended is resumed."
DISKS="origin:64M fast:16M snap:64M em1:4M cm1:4M em2:4M cm2:4M em3:4M cm3:4M em4:4M em5:4M cm5:4M"
SAVE="cm1 cm2 cm3 cm5"
CARRY="bash ../../examples/recipes/vendor-snapshot-era.sh ../../examples/recipes/cache-passthrough.sh ../../examples/recipes/stale-after-rollback.sh"

# ---- guest side ----
# Case settings (set by one_case): CASE, ORDER (ce: cache over era, ec: era over cache),
# EBS and CBS (era and cache block sizes, sectors), META2 (metadata2 or empty), TOP (the
# device written and read), CM (the cache metadata disk).

# cache_status -- records `dmsetup status c`; sets MAPPED, DIRTY and MODE
cache_status() {
    local s w
    s=$(dmsetup status c) || die_lab "dmsetup status c failed"
    ev status "$SEQ" c "$s"
    # 0 <len> cache <md bs> <used>/<total> <bs> <mapped>/<cblocks> <rh> <rm> <wh> <wm>
    #   <demotions> <promotions> <dirty> <#features> <features...> ...
    set -- $s
    MAPPED=${7%/*}
    DIRTY=${14}
    MODE=
    for w in "$@"; do
        case "$w" in writeback | writethrough | passthrough) MODE=$w ;; esac
    done
}

# in_suspension COMMAND...: in the background, as soon as the command started next holds
# the cache c suspended, runs COMMAND, then checks that c is still suspended. Its exit, put
# in SUSPENSION_EXIT by suspension_ended once the command has ended: 0, 1 (the command
# ended first, c never seen suspended), 2 (COMMAND failed), 3 (c was resumed before COMMAND
# was done).
in_suspension() {
    rm -f /tmp/cmd.ended
    (
        until dmsetup info c | grep -q SUSPENDED; do
            [ -e /tmp/cmd.ended ] && exit 1
        done
        "$@" || exit 2
        dmsetup info c | grep -q SUSPENDED || exit 3
    ) &
    IN_SUSPENSION=$!
}

# suspension_ended: tells in_suspension's job that the command ended, and waits for it.
suspension_ended() {
    SUSPENSION_EXIT=0
    : >/tmp/cmd.ended
    wait "$IN_SUSPENSION" || SUSPENSION_EXIT=$?
}

# swap_table NAME TABLE: makes TABLE live in the device NAME.
swap_table() {
    dmsetup suspend "$1" && dmsetup reload "$1" --table "$2" && dmsetup resume "$1"
}

cache_table() { # ORIGIN_DEV IO_MODE
    if [ -n "$META2" ]; then
        echo "0 $LEN cache $CMDEV $(dev fast) $1 $CBS 2 $2 metadata2 smq 0"
    else
        echo "0 $LEN cache $CMDEV $(dev fast) $1 $CBS 1 $2 smq 0"
    fi
}

dm_create() { # NAME TABLE
    step create "dmsetup create $1 --table '$2'"
    ev table "$SEQ" "$1" "$2"
    dmsetup create "$1" --table "$2" || die_lab "dmsetup create $1 failed"
}

# cache_mode MODE -- suspend, reload the cache with io mode MODE, resume
cache_mode() {
    local table
    table=$(cache_table "$CORIGIN" "$1")
    step reload "dmsetup suspend c; dmsetup reload c --table '$table'; dmsetup resume c"
    ev table "$SEQ" c "$table"
    dmsetup suspend c || die_lab "dmsetup suspend c failed"
    dmsetup reload c --table "$table" || die_lab "dmsetup reload c failed"
    dmsetup resume c || die_lab "dmsetup resume c failed"
    cache_status
    [ "$MODE" = "$1" ] || die_lab "cache in $MODE mode after the reload to $1"
}

cache_wait_clean() { # until the kernel reports no dirty block (60 s at most)
    local t=0
    step wait "wait until dmsetup status c reports 0 dirty blocks"
    while :; do
        cache_status
        [ "$DIRTY" = 0 ] && break
        [ $t -ge 600 ] && die_lab "cache still has $DIRTY dirty blocks"
        sleep 0.1
        t=$((t + 1))
    done
}

# capture_meta LABEL -- the cache metadata as the suspended cache left it (shared O_DIRECT
# read), then resume
capture_meta() {
    step suspend "dmsetup suspend c"
    dmsetup suspend c || die_lab "dmsetup suspend c failed"
    capture "$CM" "$CASE-$1" "cache metadata of case $CASE, $1, the cache suspended"
    step resume "dmsetup resume c"
    dmsetup resume c || die_lab "dmsetup resume c failed"
    cache_status
}

# wr PHASE SECTOR SECTORS UNIT -- random data at SECTOR, in direct writes of UNIT sectors
# each. The step's command begins `write CASE PHASE BEGIN END:` (sectors, end exclusive).
wr() {
    local s=$2 n=$3 u=$4
    step write "write $CASE $1 $s $((s + n)): dd if=/dev/urandom of=/dev/mapper/$TOP bs=$((u * 512)) seek=$((s / u)) count=$((n / u)) iflag=fullblock oflag=direct conv=notrunc"
    dd if=/dev/urandom of="/dev/mapper/$TOP" bs=$((u * 512)) seek=$((s / u)) count=$((n / u)) \
        iflag=fullblock oflag=direct conv=notrunc 2> /dev/null || die_lab "write at sector $s failed"
}

# whole PHASE BLOCK [COUNT] -- COUNT whole cache blocks from BLOCK, one write each
whole() { wr "$1" $(($2 * CBS)) $((${3:-1} * CBS)) "$CBS"; }

# copy FROM TO -- a whole disk, direct I/O
copy() {
    step write "dd if=$1 of=$2 bs=1M iflag=direct oflag=direct conv=notrunc,fsync"
    dd if="$1" of="$2" bs=1M iflag=direct oflag=direct conv=notrunc,fsync 2> /dev/null ||
        die_lab "copy of $1 to $2 failed"
}

# guarded NAME COMMAND... -- run_carried through a wrapper that records the state of every
# dm device (dmsetup info) right after COMMAND, before anything reads a status (the status
# of a suspended era target waits for its resume), as NAME.state, and resumes a device
# COMMAND left suspended
guarded() {
    local name=$1
    shift
    run_carried "$name" -- sh /tmp/guard "$name" "$@"
}
write_guard() {
    cat > /tmp/guard << 'EOF'
name=$1
shift
"$@"
rc=$?
dmsetup info | awk '/^Name:/ { n = $2 } /^State:/ { print n "=" $2 }' > "/out/carried/$name.state"
for d in $(sed -n 's/=SUSPENDED$//p' "/out/carried/$name.state"); do
    dmsetup resume "$d"
done
exit $rc
EOF
}

# one_case NAME ORDER ERA_BS CACHE_BS ERA_META CACHE_META META2 MODE [SECTORS]
#   MODE: run (the command), control (--dry-run only); SECTORS: the length of both targets
#   (a multiple of 32; default the origin disk's)
one_case() {
    local mode=$8 era version=1 whole_mib
    CASE=$1 ORDER=$2 EBS=$3 CBS=$4 CM=$6 META2=$7 LEN=${9:-$(blockdev --getsz "$(dev origin)")}
    [ -n "$META2" ] && version=2
    CMDEV=$(dev "$CM")
    if [ "$mode" = control ]; then
        # The cache's metadata through dm-delay, to slow the tool's reads later (interrupts).
        dm_create cmd "0 $(blockdev --getsz "$CMDEV") delay $CMDEV 0 0"
        CMDEV=/dev/mapper/cmd
    fi
    note "case $CASE order=$ORDER era_bs=$EBS cache_bs=$CBS metadata=$version mode=$mode sectors=$LEN"
    if [ "$ORDER" = ce ]; then
        dm_create e "0 $LEN era $(dev "$5") $(dev origin) $EBS"
        CORIGIN=/dev/mapper/e
        dm_create c "$(cache_table "$CORIGIN" passthrough)"
        TOP=c
    else
        CORIGIN=$(dev origin)
        dm_create c "$(cache_table "$CORIGIN" passthrough)"
        dm_create e "0 $LEN era $(dev "$5") /dev/mapper/c $EBS"
        TOP=e
    fi
    cache_status
    # The fill goes through the stack to the origin: a cache in passthrough keeps nothing.
    whole_mib=$((LEN / 2048 * 2048))
    wr fill 0 "$whole_mib" 2048
    [ "$whole_mib" = "$LEN" ] || wr fill "$whole_mib" $((LEN - whole_mib)) 32
    cache_mode writeback
    # Cached before the checkpoint, written back: the same in the snapshot and the cache.
    whole before 10 10
    whole before 100 2
    whole before 500
    cache_wait_clean
    run_carried "$CASE-checkpoint" -- bash /carry/vendor-snapshot-era.sh e "/tmp/$CASE.era"
    era=$(cat "/tmp/$CASE.era") || die_lab "the recipe saved no era"
    note "era $CASE $era"
    copy "$(dev origin)" "$(dev snap)"
    # Written after the checkpoint: cached whole blocks, a whole and a partial rewrite of
    # blocks cached before, a whole block beside a cached one (one era block of 128 sectors
    # holds both when cache blocks are 64).
    whole after 200 30
    whole after 300
    whole after 302
    whole after 304
    whole after 15
    wr after $((12 * CBS + 8)) 8 8
    whole after 501
    if [ "$mode" = recipe ]; then
        # The README's recipe, dirty blocks and all: it writes them back itself.
        run_carried "$CASE-passthrough" -- bash /carry/cache-passthrough.sh c /tmp/c.table
        cache_status
        [ "$MODE" = passthrough ] || die_lab "cache in $MODE mode after cache-passthrough.sh"
    else
        cache_wait_clean
        if [ "$CASE" = ce1 ]; then
            guarded "$CASE-writeback" era_invalidate --live e --written-since "$era" --cache c
            cache_status
        fi
        cache_mode passthrough
    fi
    # Partial writes to blocks not cached, in passthrough: in writeback smq promotes some of
    # them some time later (seen with 64-sector blocks), in passthrough it promotes nothing.
    wr after $((600 * CBS + 8)) 8 8
    wr after $((601 * CBS + 16)) 8 8
    wr after $((700 * CBS - 8)) 16 8
    wr after $((LEN - 32)) 32 32
    cache_status
    copy "$(dev snap)" "$(dev origin)"
    capture_meta before
    if [ "$mode" = control ] || [ "$CASE" = ec2 ]; then
        guarded "$CASE-dry-run" era_invalidate --live e --written-since "$era" --cache c --dry-run
        cache_status
    fi
    if [ "$mode" = control ]; then
        # An era target of the same length that the cache is not stacked on: refused.
        dm_create e2 "0 $LEN era $(dev em4) $(dev snap) $EBS"
        guarded "$CASE-not-stacked" era_invalidate --live e2 --written-since 1 --cache c
        cache_status
        dm_remove e2
    fi
    if [ "$mode" = run ]; then
        guarded "$CASE-invalidate" era_invalidate --live e --written-since "$era" --cache c
        cache_status
    fi
    if [ "$mode" = recipe ]; then
        # The README's recipe: the command, then the saved (writeback) table live again.
        guarded "$CASE-invalidate" bash /carry/stale-after-rollback.sh "/tmp/$CASE.era" e c /tmp/c.table
        cache_status
    fi
    capture_meta after
    [ "$mode" = recipe ] || cache_mode writeback
    # The snapshot as long as the top device (busybox's cmp -n goes on past a difference).
    dm_create s "0 $LEN linear $(dev snap) 0"
    run_carried "$CASE-cmp" -- cmp /dev/mapper/$TOP /dev/mapper/s
    dm_remove s
    cache_status
    if [ "$mode" = control ]; then
        interrupts "$era"
        refusals "$era"
        failed "$era"
    fi
    dm_remove "$TOP"
    if [ "$TOP" = c ]; then dm_remove e; else dm_remove c; fi
    if [ "$mode" = control ]; then
        dm_remove cmd
        dm_remove cms
    fi
    return 0
}

# interrupts ERA -- the command killed (SIGTERM, SIGINT, SIGHUP) while it holds the cache
# suspended: reads of the cache's metadata take 300 ms each meanwhile, and a watcher sends
# the signal as soon as `dmsetup info c` says SUSPENDED. Recorded as one note each:
# `kill -SIG: exit RC; states c=...; held ROOT; mapped N; stderr (L lines): FIRST LINE`.
interrupts() {
    local sig rc watcher states table
    cache_mode passthrough
    table="0 $(blockdev --getsz "$(dev "$CM")") delay $(dev "$CM") 0 300 $(dev "$CM") 0 0"
    step reload "dmsetup suspend cmd; dmsetup reload cmd --table '$table'; dmsetup resume cmd"
    ev table "$SEQ" cmd "$table"
    dmsetup suspend cmd && dmsetup reload cmd --table "$table" && dmsetup resume cmd ||
        die_lab "reload of cmd failed"
    cache_status
    for sig in TERM INT HUP; do
        rm -f /tmp/inv.pid
        note "kill: era_invalidate --live e --written-since $1 --cache c in the foreground, kill -$sig once c is suspended"
        # The watcher in the background, the tool in the foreground: a shell starts its
        # background jobs with SIGINT ignored, and a tool keeps an ignored SIGINT ignored.
        (
            while [ ! -s /tmp/inv.pid ]; do sleep 0.01; done
            n=0
            until dmsetup info c | grep -q SUSPENDED; do
                n=$((n + 1))
                [ $n -ge 2000 ] || ! kill -0 "$(cat /tmp/inv.pid)" 2> /dev/null && exit 1
            done
            kill -"$sig" "$(cat /tmp/inv.pid)"
        ) &
        watcher=$!
        sh -c 'echo $$ > /tmp/inv.pid; exec "$@"' sh era_invalidate --live e --written-since "$1" \
            --cache c > "/tmp/kill-$sig.out" 2> "/tmp/kill-$sig.err"
        rc=$?
        wait "$watcher" || note "kill -$sig: the watcher never saw c suspended"
        states=$(dmsetup info | awk '/^Name:/ { n = $2 } /^State:/ { printf "%s=%s ", n, $2 }')
        for d in $(echo "$states" | tr ' ' '\n' | sed -n 's/=SUSPENDED$//p'); do dmsetup resume "$d"; done
        cache_status
        era_status e
        note "kill -$sig: exit $rc; states ${states% }; held $HELD; mapped $MAPPED; stderr ($(wc -l < "/tmp/kill-$sig.err" | tr -d ' ') lines): $(head -n 1 "/tmp/kill-$sig.err")"
    done
}

# cmd_table TABLE -- the cache metadata's device (cmd) reloaded with TABLE
cmd_table() {
    step reload "dmsetup suspend cmd; dmsetup reload cmd --table '$1'; dmsetup resume cmd"
    ev table "$SEQ" cmd "$1"
    dmsetup suspend cmd && dmsetup reload cmd --table "$1" && dmsetup resume cmd ||
        die_lab "reload of cmd failed"
}

# unsuspended NAME COMMAND... -- a guarded run while a poller in the background reads
# `dmsetup info c` again and again; noted as `NAME: c seen suspended during the run: yes|no`
unsuspended() {
    local name=$1 poller seen=no
    shift
    rm -f /tmp/poll.stop /tmp/poll.seen
    (
        until [ -e /tmp/poll.stop ]; do
            dmsetup info c | grep -q SUSPENDED && : > /tmp/poll.seen
        done
    ) &
    poller=$!
    guarded "$name" "$@"
    : > /tmp/poll.stop
    wait "$poller"
    [ -e /tmp/poll.seen ] && seen=yes
    note "$name: c seen suspended during the run: $seen"
}

# refusals ERA -- what the command refuses or stops at, on the control case's devices (the
# cache in passthrough, its metadata behind dm-delay): a metadata snapshot of the era target
# held by someone else; a table loaded while the command holds the cache suspended; the
# cache's metadata writes failing while the command holds it suspended; the cache's metadata
# flagged needs_check after that (last: the cache stays so).
refusals() {
    local table rc loader flakey
    cache_status
    # 1. A snapshot held: the era session refuses before the cache is touched.
    era_msg e take_metadata_snap
    note "snap-held: e holds metadata snapshot $HELD"
    unsuspended "$CASE-snap-held" era_invalidate --live e --written-since "$1" --cache c
    era_status e
    cache_status
    era_msg e drop_metadata_snap
    # 2. A writeback table loaded while the command reads the mapping (1 s a metadata read):
    #    the kernel makes it live at the command's resume.
    cmd_table "0 $(blockdev --getsz "$(dev "$CM")") delay $(dev "$CM") 0 1000 $(dev "$CM") 0 0"
    cache_status
    table=$(cache_table "$CORIGIN" writeback)
    step reload "dmsetup load c --table '$table' once c is suspended by the command"
    # Loaded before the command resumed the cache: the next resume makes it live.
    in_suspension dmsetup load c --table "$table"
    guarded "$CASE-table-changed" era_invalidate --live e --written-since "$1" --cache c
    suspension_ended
    rc=$SUSPENSION_EXIT
    note "table-changed: loader exit $rc (0: loaded while the command held c suspended)"
    note "table-changed: live table: $(dmsetup table c)"
    note "table-changed: inactive table: $(dmsetup table --inactive c)"
    cache_status
    era_status e
    cache_mode passthrough
    # 3. Metadata writes start failing while the command holds the cache suspended for its
    #    first read (dm-flakey, always down, error_writes, over dm-delay: reads pass, 1 s
    #    each): the cache's next commit fails, the kernel aborts the transaction, goes
    #    read-only and flags needs_check; the messages it took before were in memory only.
    dm_create cms "0 $(blockdev --getsz "$(dev "$CM")") delay $(dev "$CM") 0 1000"
    flakey="0 $(blockdev --getsz "$(dev "$CM")") flakey /dev/mapper/cms 0 0 3600 1 error_writes"
    cache_status
    step reload "dmsetup suspend cmd; dmsetup reload cmd --table '$flakey'; dmsetup resume cmd once c is suspended by the command"
    ev table "$SEQ" cmd "$flakey"
    in_suspension swap_table cmd "$flakey"
    guarded "$CASE-writes-fail" era_invalidate --live e --written-since "$1" --cache c
    suspension_ended
    rc=$SUSPENSION_EXIT
    note "writes-fail: swapper exit $rc (0: writes failing before the command resumed c)"
    cache_status
    era_status e
    # 4. The cache as the kernel left it (a status read commits: if nothing had committed
    #    since, this commit fails): refused untouched.
    note "needs-check: status before: $(dmsetup status c)"
    unsuspended "$CASE-needs-check" era_invalidate --live e --written-since "$1" --cache c
    cache_status
    era_status e
}

# failed ERA -- a cache the kernel failed (status `Fail`): the control case's cache, stuck
# read-only, is removed and made again over the same era target with fresh metadata (its
# superblock zeroed); then its metadata's device is replaced by the error target, so that
# the next commit fails and so does the reading of the superblock when the kernel aborts the
# transaction. The command must refuse it without suspending it. The kernel's status lines
# and log lines are noted (`failed: ...`); no status of c is recorded after the swap except
# by the carried run's own reading of every device.
failed() {
    local size s t=0 logged
    size=$(blockdev --getsz "$(dev "$CM")")
    dm_remove c
    cmd_table "0 $size delay $(dev "$CM") 0 0"
    step write "dd if=/dev/zero of=$(dev "$CM") bs=4096 count=1 oflag=direct conv=notrunc"
    dd if=/dev/zero of="$(dev "$CM")" bs=4096 count=1 oflag=direct conv=notrunc 2> /dev/null ||
        die_lab "zeroing the superblock of $CM failed"
    dm_create c "$(cache_table "$CORIGIN" passthrough)"
    cache_status
    [ "$MODE" = passthrough ] || die_lab "cache in $MODE mode after its creation"
    logged=$(dmesg | wc -l)
    cmd_table "0 $size error"
    # A status read commits (every second the kernel does too): the first may come before.
    note "failed: first status after the swap: $(dmsetup status c)"
    s=$(dmsetup status c)
    until [ "${s#* cache }" = Fail ] || [ $t -ge 50 ]; do
        sleep 0.1
        t=$((t + 1))
        s=$(dmsetup status c)
    done
    note "failed: status before: $s"
    # Not a pipe into the loop: note counts the steps, which a subshell would forget.
    dmesg | tail -n +$((logged + 1)) | grep 'device-mapper' > /tmp/failed.log
    while IFS= read -r s; do
        note "failed: kernel: ${s#*] }"
    done < /tmp/failed.log
    unsuspended "$CASE-failed" era_invalidate --live e --written-since "$1" --cache c
    note "failed: status after: $(dmsetup status c)"
    era_status e
}

scenario() {
    carried bash || die_lab "bash was not carried (the recipe runs with it)"
    write_guard
    # 131040 sectors: the last era block (of 64) is half a block, the last cache block (of
    # 128) three quarters of one, which the kernel never caches.
    one_case ce1 ce 64 128 em1 cm1 "" run 131040
    one_case ec2 ec 128 64 em2 cm2 metadata2 run
    one_case ctl ce 128 64 em3 cm3 metadata2 control
    one_case rcp ec 128 64 em5 cm5 "" recipe
}
