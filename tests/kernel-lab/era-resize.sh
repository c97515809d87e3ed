# era-resize: grow and then shrink a live era target, so that writesets of different
# lengths and a truncated era array are on disk. Run with tests/kernel-lab/run.sh era-resize;
# its images are kept as fixtures in tests/fixtures/kernel.
TARGET=era
DESCRIPTION="1024 blocks of 32 KiB, grown to 2048 blocks (table reload), then shrunk to 768. Writes before the grow, after it (past the old end), and after the shrink; captures while grown and while shrunk (live), and the final image after a clean remove. Archived writesets keep the nr_bits of their era, so the metadata holds writesets shorter and longer than nr_blocks."
DISKS="meta:4M origin:128M"
SAVE="meta"

scenario() {
    local meta origin
    meta=$(dev meta)
    origin=$(dev origin)
    era_create e "$meta" "$origin" 64 65536              # 1024 blocks, era 1
    era_write e 0 16
    era_write e 1000 24
    era_msg e checkpoint                                  # era 2
    era_write e 8 16
    era_reload e "$meta" "$origin" 64 131072              # 2048 blocks, era 3
    era_write e 2000 48
    era_write e 10 10
    era_msg e checkpoint                                  # era 4
    era_write e 1500 10
    era_write e 760 20
    capture meta live-grown "live, grown to 2048 blocks: writesets of 1024 and 2048 bits"
    era_reload e "$meta" "$origin" 64 49152               # 768 blocks, era 5
    era_write e 700 68
    era_write e 0 1
    capture meta live-shrunk "live, shrunk to 768 blocks: writesets longer than nr_blocks"
    dm_remove e
}
