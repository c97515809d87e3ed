# era-restored: the kernel activates metadata written by era_restore / era_repair
# (attached with KLAB_DISK_meta=FILE), takes writes, a checkpoint and a snapshot on it,
# and the carried era_check and era_dump (if any) read the result in the guest.
TARGET=era
DESCRIPTION="Activate dm-era on metadata made by era_restore or era_repair on the host (KLAB_DISK_meta=FILE), with the geometry read from its superblock; write, checkpoint, take and drop a metadata snapshot, remove. Carried era_check/era_dump runs read the device while the snapshot is held and after the remove."
DISKS="meta:-:file=../fixtures/kernel/era-basic.meta.img.gz origin:16G"
SAVE="meta"

scenario() {
    era_sb_geometry "$(dev meta)"
    note "host-made superblock: magic $SB_MAGIC, data_block_size $SB_BS, nr_blocks $SB_NB, current_era $SB_ERA, metadata_snap $SB_SNAP"
    [ "$SB_MAGIC" = 2126579579 ] || die_lab "not an era superblock (magic $SB_MAGIC)"
    era_create e "$(dev meta)" "$(dev origin)" "$SB_BS" $((SB_NB * SB_BS))
    capture meta activated "live, right after the kernel activated the host-made image"
    era_write e 0 4
    era_msg e checkpoint
    era_write e $((SB_NB - 1))
    era_msg e take_metadata_snap
    if carried era_dump; then
        # Only the size and the end: a plain dump of a large origin would fill /out.
        run_carried dump-snap -- sh -c "era_dump --logical --metadata-snap $(dev meta) | tail -c 300"
    fi
    era_msg e drop_metadata_snap
    era_status e
    dm_remove e
    if carried era_check; then
        run_carried check-after -- era_check "$(dev meta)"
    fi
}
