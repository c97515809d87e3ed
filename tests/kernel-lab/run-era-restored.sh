#!/bin/sh
# Opt-in kernel test: restores era-basic's dump (and repairs era-large) with the release
# binaries, has the kernel (under QEMU, via the shared kernel-lab) activate each result,
# and checks that it was accepted and that the image the kernel left passes era_check.
#
#   LAB=path/to/kernel-lab tests/kernel-lab/run-era-restored.sh
#
# Needs qemu-system-x86, busybox-static, dmsetup, cpio, kmod and apt access once for the
# kernel package (see the lab's README). Everything it writes is under target/kernel-lab.
set -eu
cd "$(dirname "$0")/../.."
LAB=${LAB:-../shared/kernel-lab}
OUT=target/kernel-lab
BIN=target/release
mkdir -p "$OUT/work" "$OUT/out"
cargo build --release --bins >/dev/null

gunzip -c tests/fixtures/kernel/era-basic.meta.img.gz > "$OUT/basic.img"
"$BIN/era_dump" -o "$OUT/basic.xml" "$OUT/basic.img"
truncate -s 0 "$OUT/restored.img" && truncate -s 4M "$OUT/restored.img"
"$BIN/era_restore" -i "$OUT/basic.xml" -o "$OUT/restored.img"

gunzip -c tests/fixtures/kernel/era-large.live-end.img.gz > "$OUT/large.img"
truncate -s 0 "$OUT/repaired.img" && truncate -s 32M "$OUT/repaired.img"
"$BIN/era_repair" -i "$OUT/large.img" -o "$OUT/repaired.img"

status=0
for img in restored repaired; do
    KLAB_WORK="$OUT/work" KLAB_OUT="$OUT/out/$img" KLAB_DISK_meta="$OUT/$img.img" \
    KLAB_CARRY="$BIN/era_check:$BIN/era_dump" \
        "$LAB/run-all.sh" --no-verify --scenario tests/kernel-lab/era-restored.sh || status=1
    m="$OUT/out/$img/era-restored.json"
    if ! grep -q '"result": "ok"' "$m" 2>/dev/null; then
        echo "FAIL $img: the kernel run did not succeed (see $OUT/out/$img)"; status=1; continue
    fi
    gunzip -c "$OUT/out/$img/era-restored.meta.img.gz" > "$OUT/$img.after.img"
    if "$BIN/era_check" "$OUT/$img.after.img"; then
        echo "ok $img: accepted by the kernel; its image afterwards passes era_check"
    else
        echo "FAIL $img: era_check rejects the image the kernel left"; status=1
    fi
    rc=$(cat "$OUT/out/$img/era-restored.run.check-after.rc" 2>/dev/null || echo missing)
    echo "   in-guest era_check after remove: exit $rc"
    [ "$rc" = 0 ] || status=1
done
exit $status
