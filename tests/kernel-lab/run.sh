#!/usr/bin/env bash
# Opt-in: runs one of our kernel-lab scenarios in a QEMU VM with our release binaries carried
# into the guest. Outputs land in target/kernel-lab/out, scratch space in target/kernel-lab/work.
# KLAB_OUT and KLAB_WORK may point elsewhere (under target/).
# Needs: qemu-system-x86 busybox-static dmsetup cpio kmod file gzip (Debian packages) and
# the shared kernel-lab beside the project (../shared/kernel-lab).
#
#   tests/kernel-lab/run.sh era-live-tools
#   KLAB_DISK_meta=target/restored.img tests/kernel-lab/run.sh era-host-image   # a lab scenario
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
lab=${KLAB_LAB:-../shared/kernel-lab}
[ -x "$lab/run-all.sh" ] || { echo "kernel-lab not found at $lab (set KLAB_LAB)" >&2; exit 1; }
name=${1:?scenario name}
cargo build --release --bins
carry=""
for b in era_check era_dump era_invalidate era_metadata_size era_restore log_dump log_repair; do
  [ -x "target/release/$b" ] && carry="${carry:+$carry:}target/release/$b"
done
scenario=$name
[ -f "tests/kernel-lab/$name.sh" ] && scenario="--scenario tests/kernel-lab/$name.sh"
# era-cache-rollback puts a cache's metadata behind dm-delay, and behind dm-flakey to fail its writes.
export KLAB_EXTRA_MODULES="${KLAB_EXTRA_MODULES:-} dm-delay dm-flakey"
export KLAB_WORK=${KLAB_WORK:-target/kernel-lab/work} KLAB_OUT=${KLAB_OUT:-target/kernel-lab/out}
mkdir -p "$KLAB_WORK" "$KLAB_OUT"
# shellcheck disable=SC2086
KLAB_CARRY="$carry" "$lab/run-all.sh" --no-verify $scenario
