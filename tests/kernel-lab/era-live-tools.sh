# era-live-tools: our era tools against a live era target with a held metadata snapshot
# while writes continue. Run through tests/kernel-lab/run.sh (opt-in, needs QEMU).
TARGET=era
DESCRIPTION="4096 blocks of 32 KiB. Three eras of known writes, take_metadata_snap (archives era 3, era 4 starts), then a background writer keeps writing in era 4 while the carried era tools read the live metadata device through the held snapshot: era_invalidate --metadata-snapshot for N = 1..5, era_dump --metadata-snap, era_check --metadata-snap. Then the writer stops; era_check and era_invalidate without the snapshot must be refused (the kernel holds the device); drop_metadata_snap; a snapshot read must fail; clean remove."
DISKS="meta:4M origin:128M"
SAVE="meta"

scenario() {
    local meta n
    meta=$(dev meta)
    era_create e "$meta" "$(dev origin)" 64          # era 1
    era_write e 0 64
    era_write e 1000 10
    era_write e 63 2
    era_msg e checkpoint                              # era 2
    era_write e 32 64
    era_write e 4088 8
    era_msg e checkpoint                              # era 3
    era_write_random e 33 40
    era_msg e take_metadata_snap                      # archives era 3, era 4 starts
    era_bg_start e 44 20000
    pause 1
    if carried era_invalidate; then
        for n in 1 2 3 4 5; do
            run_carried "inval-snap-since-$n" -- era_invalidate --metadata-snapshot --written-since "$n" "$meta"
        done
        run_carried inval-snap-text -- era_invalidate --metadata-snapshot --written-since 2 --format text --units sectors "$meta"
    fi
    if carried era_dump; then
        run_carried dump-snap -- era_dump --metadata-snap "$meta"
    fi
    if carried era_check; then
        run_carried check-snap -- era_check --metadata-snap "$meta"
    fi
    era_bg_stop
    if carried era_check; then
        run_carried check-live-busy -- era_check "$meta"
    fi
    if carried era_invalidate; then
        run_carried inval-live-busy -- era_invalidate --written-since 4 "$meta"
    fi
    capture meta live-snap-held "live, snapshot held, background writer stopped"
    era_msg e drop_metadata_snap
    if carried era_invalidate; then
        run_carried inval-snap-dropped -- era_invalidate --metadata-snapshot --written-since 1 "$meta"
    fi
    dm_remove e
    if carried era_check; then
        run_carried check-after-remove -- era_check "$meta"
    fi
    if carried era_invalidate; then
        run_carried inval-after-remove-since-4 -- era_invalidate --written-since 4 "$meta"
    fi
}
