#!/usr/bin/env bash
# Speed and memory of the era tools on large synthetic metadata (seeded, reproducible), and,
# where Debian's thin-provisioning-tools is installed, of its tools on the same data.
#
#   benches/era_tools.sh [NR_BLOCKS] [WRITESETS]      (default 10000000 blocks, 4 writesets)
#
# Targets (2 cores): at 10 million blocks era_restore stays under 64 MiB; era_check,
# era_invalidate and era_dump stay under 16 MiB and take seconds, not minutes.
# Work files go to target/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000000}
ws=${2:-4}
dir=target/bench
mkdir -p "$dir"
cargo build --release --bins --examples >/dev/null
bin=target/release
xml=$dir/era-$n-$ws.xml
img=$dir/era-$n-$ws.img
[ -f "$xml" ] || "$bin/examples/gen_era" --nr-blocks "$n" --writesets "$ws" --seed 1 -o "$xml"
[ -f "$img" ] || "$bin/examples/gen_era" --nr-blocks "$n" --writesets "$ws" --seed 1 --binary -o "$img"

fail=0
# measure NAME LIMIT_MIB COMMAND...: prints seconds and peak memory, checks the limit.
measure() {
  local name=$1 limit=$2; shift 2
  local rc=0
  /usr/bin/time -f '%e %M' -o "$dir/time.txt" "$@" >/dev/null 2>"$dir/stderr.txt" || rc=$?
  local t
  t=$(tail -1 "$dir/time.txt")
  local secs=${t% *} kib=${t#* }
  local mib=$((kib / 1024))
  local verdict=ok
  if [ "$rc" -ne 0 ]; then verdict="exit $rc: $(head -c 200 "$dir/stderr.txt")"; fi
  if [ -n "$limit" ] && [ "$mib" -gt "$limit" ]; then verdict="OVER ${limit} MiB"; fail=1; fi
  printf '%-34s %8ss %7s MiB  %s\n' "$name" "$secs" "$mib" "$verdict"
}

echo "metadata: $n origin blocks, $ws writesets; image $(du -h "$img" | cut -f1), XML $(du -h "$xml" | cut -f1)"
measure "era_check" 16 "$bin/era_check" "$img"
measure "era_invalidate --written-since 102" 16 "$bin/era_invalidate" --written-since 102 "$img"
measure "era_dump" 16 "$bin/era_dump" -o "$dir/dump.xml" "$img"
measure "era_dump --logical" 64 "$bin/era_dump" --logical -o "$dir/logical.xml" "$img"
cp --sparse=always "$img" "$dir/restored.img"
measure "era_restore" 64 "$bin/era_restore" -i "$xml" -o "$dir/restored.img"
cmp -s "$dir/dump.xml" "$xml" || { echo "era_dump differs from the generated XML"; fail=1; }
measure "era_repair" 64 "$bin/era_repair" -i "$img" -o "$dir/restored.img"

if command -v era_check >/dev/null && [ "$(command -v era_check)" != "$PWD/$bin/era_check" ]; then
  echo "thin-provisioning-tools $(era_check -V 2>/dev/null || echo '?') on the same data:"
  measure "  era_check" "" era_check "$img"
  measure "  era_invalidate --written-since 102" "" era_invalidate --written-since 102 "$img"
  measure "  era_dump" "" era_dump -o "$dir/peer-dump.xml" "$img"
  cp --sparse=always "$img" "$dir/peer-restored.img"
  measure "  era_restore" "" era_restore -i "$xml" -o "$dir/peer-restored.img"
  # Each side reads what the other wrote.
  if "$bin/era_check" -q "$dir/peer-restored.img" &&
     "$bin/era_dump" "$dir/peer-restored.img" | cmp -s - "$xml" &&
     era_check "$dir/restored.img" >/dev/null 2>&1; then
    echo "compatible: ours read the peer's restore exactly, the peer's era_check accepts ours"
  else
    echo "INCOMPATIBLE: see era_check/era_dump on $dir/peer-restored.img and $dir/restored.img"
    fail=1
  fi
fi
exit $fail
