# era-live-backup: incremental backup of a live era target with one command per run
# (era_invalidate --live --checkpoint), the refusals of a live session, and killing a live
# read. Run with tests/kernel-lab/run.sh era-live-backup (opt-in, needs QEMU); checked by
# tests/kernel_lab_live.rs.
TARGET=era
DESCRIPTION="Backup loop on a live era target of 1000 blocks of 32 KiB plus a partial block of 24 sectors (64024 sectors): random data written, then era_invalidate --live e --checkpoint --written-since NEXT --units bytes, the listed byte ranges copied with dd from the origin (no writes during the copy) to a backup disk, NEXT taken from the JSON; a full first run (--written-since 0), six incrementals, one table reload between them, a background writer during two of the runs; then the backup is compared with the origin. Then the refusals (missing target, linear target, suspended target, snapshot held by someone else, without root), --use-held-snapshot, era_check/era_dump --live, and a 2097152-block target whose era_dump --live is killed mid-read with SIGTERM and SIGINT."
DISKS="meta:16M origin:64M backup:64M bigmeta:64M bigorigin:8G"
SAVE="meta"

LEN=64024    # 1000 blocks of 64 sectors and one of 24
BS=64

# wr NAME BLOCK COUNT -- COUNT blocks of random data at BLOCK (the last may be partial)
wr() {
    local s=$(($2 * BS)) n=$(($3 * BS)) u=$((BS * 512))
    if [ $((s + n)) -gt $LEN ]; then n=$((LEN - s)); u=512; fi
    step write "dd if=/dev/urandom of=/dev/mapper/$1 bs=$u seek=$((s * 512 / u)) count=$((n * 512 / u)) oflag=direct conv=notrunc"
    dd if=/dev/urandom of="/dev/mapper/$1" bs="$u" seek=$((s * 512 / u)) count=$((n * 512 / u)) \
        oflag=direct conv=notrunc 2> /dev/null || die_lab "write at block $2 failed"
    ev write "$SEQ" "$ERA" "$2" "$(($2 + $3))"
}

# writes ROUND -- a mix of single blocks and runs at pseudo-random places
writes() {
    local b
    for b in $(prand $((100 + $1)) 12 1000); do wr e "$b" 1; done
    for b in $(prand $((200 + $1)) 3 990); do wr e "$b" 7; done
}

# bg_start SEED / bg_stop -- our own background writer of random data (the lab's writes
# zeros and wants the era to stay put, and each of our runs starts new eras)
bg_start() {
    prand "$1" 400 1000 > /tmp/bg.blocks
    rm -f /tmp/bg.stop
    step write "background writer: random data to pseudo-random blocks (seed $1) until stopped"
    (
        while read -r b; do
            [ -f /tmp/bg.stop ] && break
            dd if=/dev/urandom of=/dev/mapper/e bs=$((BS * 512)) seek="$b" count=1 \
                oflag=direct conv=notrunc 2> /dev/null
        done < /tmp/bg.blocks
    ) &
    BGW=$!
}
bg_stop() {
    step wait "stop the background writer"
    touch /tmp/bg.stop
    wait "$BGW"
}

NEXT=0
# incremental NAME -- one backup run: the tool, then the copy of what it listed
incremental() {
    run_carried "$1" -- era_invalidate --live e --checkpoint --written-since "$NEXT" --units bytes
    [ "$(cat "/out/carried/$1.rc")" = 0 ] || die_lab "$1 failed: $(cat "/out/carried/$1.stderr")"
    if [ -n "$BGW" ]; then bg_stop; BGW=; fi
    local json=/out/carried/$1.stdout n=0 b e
    NEXT=$(sed -n 's/.*"next_written_since":\([0-9]*\).*/\1/p' "$json")
    [ -n "$NEXT" ] || die_lab "$1: no next_written_since"
    note "copy the byte ranges $1 listed from the origin to the backup (dd, 512-byte sectors, direct I/O)"
    grep -o '"begin":[0-9]*,"end":[0-9]*' "$json" | sed 's/"begin":\([0-9]*\),"end":\([0-9]*\)/\1 \2/' > /tmp/ranges
    while read -r b e; do
        dd if="$(dev origin)" of="$(dev backup)" bs=512 skip=$((b / 512)) seek=$((b / 512)) \
            count=$(((e - b) / 512)) iflag=direct oflag=direct conv=notrunc 2> /dev/null ||
            die_lab "copy of $b..$e failed"
        n=$((n + 1))
    done < /tmp/ranges
    note "$1: $n ranges copied; next --written-since $NEXT"
    era_status e
}

scenario() {
    local meta r
    meta=$(dev meta)
    BGW=
    era_create e "$meta" "$(dev origin)" $BS $LEN
    wr e 0 1000                                          # every whole block
    wr e 1000 1                                          # and the partial one
    incremental full
    for r in 1 2 3 4 5 6; do
        writes "$r"
        [ "$r" = 6 ] && wr e 1000 1                     # the partial last block again
        [ "$r" = 3 ] && era_reload e "$meta" "$(dev origin)" $BS $LEN
        [ "$r" = 2 ] || [ "$r" = 5 ] && bg_start "$((300 + r))"
        incremental "inc-$r"
    done
    run_carried compare -- cmp -n $((LEN * 512)) "$(dev origin)" "$(dev backup)"

    # Refusals: one line each, exit 1, and nothing left held.
    run_carried missing -- era_invalidate --live nosuch --written-since 1
    dmsetup create lin --table "0 8 linear $(dev backup) 0" || die_lab "linear target"
    run_carried not-era -- era_invalidate --live lin --written-since 1
    dmsetup remove lin
    # Not through run_carried: it reads every device's status afterwards, and the kernel's
    # era status waits for the worker, which a suspended target has stopped (a status
    # read would hang until the resume).
    note "dmsetup suspend e"
    dmsetup suspend e || die_lab "suspend failed"
    era_invalidate --live e --written-since 1 > /tmp/susp.out 2> /tmp/susp.err
    rc=$?
    note "suspended: exit $rc; $(wc -c < /tmp/susp.out | tr -d ' ') bytes of stdout; stderr: $(cat /tmp/susp.err)"
    note "dmsetup resume e"
    dmsetup resume e || die_lab "resume failed"
    era_status e
    mkdir -p /etc
    grep -q '^nobody:' /etc/passwd 2> /dev/null || echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> /etc/passwd
    if command -v su > /dev/null; then
        run_carried not-root -- su -s /bin/sh nobody -c "PATH=$PATH era_invalidate --live e --written-since 1"
    fi
    era_msg e take_metadata_snap                          # someone else's snapshot
    run_carried held -- era_invalidate --live e --checkpoint --written-since 1
    run_carried use-held -- era_invalidate --live e --use-held-snapshot --written-since 1
    era_status e
    era_msg e drop_metadata_snap
    run_carried check-live -- era_check --live e
    run_carried dump-live -- sh -c 'era_dump --live /dev/mapper/e | tail -c 200'
    run_carried by-path -- era_invalidate --live /dev/mapper/e --written-since "$NEXT" --format text --units sectors

    # A read long enough to be killed in the middle: 2097152 blocks, era_dump --live.
    era_create big "$(dev bigmeta)" "$(dev bigorigin)" 8
    era_msg big checkpoint
    mkfifo /tmp/dump.fifo
    for sig in TERM INT; do
        # era_dump runs in the foreground and the killer in the background: a shell starts
        # its background jobs with SIGINT ignored, and a tool keeps an ignored SIGINT ignored.
        note "kill: era_dump --live big > fifo (wc -c) in the foreground, kill -$sig after 2 s"
        wc -c < /tmp/dump.fifo > "/tmp/kill-$sig.bytes" &
        wcpid=$!
        rm -f /tmp/dump.pid
        (
            sleep 2
            kill -"$sig" "$(cat /tmp/dump.pid)"
        ) &
        killer=$!
        sh -c 'echo $$ > /tmp/dump.pid; exec era_dump --live big' > /tmp/dump.fifo 2> "/tmp/kill-$sig.stderr"
        rc=$?
        wait "$killer"
        wait "$wcpid"
        era_status big
        note "kill -$sig: exit $rc; $(tr -d ' ' < "/tmp/kill-$sig.bytes") bytes of XML written; held root afterwards: $HELD; stderr: $(cat "/tmp/kill-$sig.stderr")"
        run_carried "after-kill-$sig" -- dmsetup status big
    done
    dm_remove big
    dm_remove e
}
