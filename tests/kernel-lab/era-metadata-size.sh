# era-metadata-size: era targets on metadata devices of exactly the size era_metadata_size
# gives, driven to the state that size is for. Run with tests/kernel-lab/run.sh
# era-metadata-size (opt-in, needs QEMU); checked by tests/kernel_lab_live.rs.
TARGET=era
DESCRIPTION="Part A: 2097152 blocks of 8 sectors, metadata sized by era_metadata_size for 300 undigested writesets (a linear device of exactly that size); back-to-back checkpoints (status every 5th) until the status line shows at least the committed use the formula gives for 300 archived writesets, then a write, the status, and a capture of the metadata (the writesets are counted on the host). Part B: 65536 blocks, metadata sized for 1 writeset; one write in each of the 65 era-array blocks' ranges, a checkpoint and a status read (which starts the digestion), 5 s of quiet while the kernel digests that writeset into the era array in one transaction, then two status reads: the first shows the transaction's copies, the second the committed state."
DISKS="meta:128M origin:8G"
SAVE=""

# sized NAME N W OFFSET -- a linear device of era_metadata_size's size for N blocks and W
# writesets, at sector OFFSET of the meta disk; sets SIZE (sectors) and COMMITTED (blocks)
sized() {
    run_carried "size-$1" -- era_metadata_size --nr-blocks "$2" --writesets "$3" --units sectors -n
    SIZE=$(cat "/out/carried/size-$1.stdout")
    run_carried "size-$1-json" -- era_metadata_size --nr-blocks "$2" --writesets "$3" --format json
    COMMITTED=$(sed -n 's/.*"committed_blocks":\([0-9]*\).*/\1/p' "/out/carried/size-$1-json.stdout")
    WSB=$(sed -n 's/.*"writeset_blocks":\([0-9]*\).*/\1/p' "/out/carried/size-$1-json.stdout")
    [ -n "$SIZE" ] && [ -n "$COMMITTED" ] && [ -n "$WSB" ] || die_lab "era_metadata_size failed"
    step create "dmsetup create $1 --table '0 $SIZE linear $(dev meta) $4'"
    dd if=/dev/zero of="$(dev meta)" bs=512 seek="$4" count=8 oflag=direct conv=notrunc 2> /dev/null
    dmsetup create "$1" --table "0 $SIZE linear $(dev meta) $4" || die_lab "linear $1 failed"
}

used() { set -- $(dmsetup status "$1"); USED=${5%/*}; }

scenario() {
    local i=0
    # Part A: pile-up.
    sized ma 2097152 300 0
    era_create a /dev/mapper/ma "$(dev origin)" 8 16777216
    used a
    # A status counts the blocks a digestion freed since the last commit as used: go three
    # writesets past the mark so that the count on disk surely reaches 300.
    while [ "$USED" -lt $((COMMITTED + 3 * WSB)) ] && [ $i -lt 900 ]; do
        era_checkpoint_fast a
        i=$((i + 1))
        [ $((i % 5)) = 0 ] && used a
    done
    note "part A: $i checkpoints; $USED blocks in use, the formula's committed use for 300 writesets is $COMMITTED, the device has $((SIZE / 8)) blocks"
    era_write a 2097151
    era_status a
    step capture "dd if=/dev/mapper/ma of=pileup.img bs=1M iflag=direct  # right after the status"
    dd if=/dev/mapper/ma of=/out/images/pileup.img bs=1M iflag=direct 2> /dev/null || die_lab "capture failed"
    ev image "$SEQ" pileup meta "part A: the metadata right after the last status"
    era_write a 0 8
    era_status a
    dm_remove a
    dmsetup remove ma

    # Part B: a transaction that copies the whole era array.
    sized mb 65536 1 0
    era_create b /dev/mapper/mb "$(dev origin)" 8 524288
    for i in $(seq 0 64); do era_write b $((i * 1018)); done
    # The checkpoint's call leaves the worker idle; the status read after it starts the
    # digestion, which then runs without a commit until the next status read.
    era_msg b checkpoint
    pause 5
    era_status b
    note "second status read, right after the first"
    era_status b
    era_write b 5
    era_status b
    dm_remove b
    dmsetup remove mb
}
