#!/usr/bin/env bash
# era_invalidate --cache-metadata on a large cache, with thin-provisioning-tools 1.3.3's
# cache_dump of the same metadata as the reference for reading it: wall time (median of
# alternating runs; also the fastest, and CPU time), peak memory, and the targets of
# BENCHMARKS.md ("Matching a cache against an era list").
#
#   benches/cache_tools.sh [-n RUNS] [-c CACHE_BLOCKS] [-b ERA_BLOCKS] [-e "ERAS"] [-r REFERENCE] [-d DIR]
#
#   -n RUNS          runs per command, alternating between the commands (default 5)
#   -c CACHE_BLOCKS  cache blocks of 64 KiB (default 16777216: a cache of 1 TiB)
#   -b ERA_BLOCKS    origin blocks of the era metadata, 128 KiB each (default 10000000:
#                    an origin of 1.16 TiB, 20 million cache-sized blocks)
#   -e ERAS          the --written-since eras to time (default "101 10": the 4 writesets'
#                    eras, about a quarter of the origin written; and nearly all of it)
#   -r REFERENCE     thin-provisioning-tools 1.3.3: a source tree built with
#                    `cargo build --release`, or its pdata_tools binary
#                    (default $TPT, else ../tpt next to this repository)
#   -d DIR           work files (default target/bench: 200 MB of cache metadata, 50 MB
#                    of era metadata at the defaults)
#
# The cache (examples/gen_cache.rs, version 2, seed 1) has 90% of its blocks mapped to
# distinct origin blocks spread over the era's origin, 10% of those dirty; the era metadata
# (examples/gen_era.rs, seed 1, 4 writesets) covers the same origin in blocks of twice the
# cache's size. Before timing, the reference's cache_check must accept the cache, and the
# cache blocks our era_invalidate lists for the first era must be those the reference's
# cache_dump maps to an origin block the era list (ours, without the cache) says written.
# Runs are timed by examples/bench_timer.rs, outputs to /dev/null. Needs bash 5 and awk.
# Exit status 1 if a target is missed or a check fails. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

runs=5
cache_blocks=16777216
era_blocks=10000000
eras="101 10"
reference=${TPT:-$repo/../tpt}
dir=$repo/target/bench
while getopts "n:c:b:e:r:d:" opt; do
  case $opt in
    n) runs=$OPTARG ;;
    c) cache_blocks=$OPTARG ;;
    b) era_blocks=$OPTARG ;;
    e) eras=$OPTARG ;;
    r) reference=$OPTARG ;;
    d) dir=$OPTARG ;;
    *) sed -n '2,28p' "$0"; exit 2 ;;
  esac
done

. "$repo/benches/reference.sh"
find_reference "$reference" cache_check

build_ours "$repo"
timer=$examples/bench_timer
mkdir -p "$dir"

cache_sectors=128
era_sectors=256
origin_sectors=$((era_blocks * era_sectors))
cache=$dir/cache-$cache_blocks.img
era=$dir/era-$era_blocks-$era_sectors.img
[ -s "$cache" ] || "$examples/gen_cache" --metadata-version 2 --block-size "$cache_sectors" \
  --cache-blocks "$cache_blocks" --mapped 0.9 --dirty 0.1 --origin-sectors "$origin_sectors" \
  --seed 1 -o "$cache"
[ -s "$era" ] || "$examples/gen_era" --nr-blocks "$era_blocks" --block-size "$era_sectors" \
  --writesets 4 --seed 1 --binary -o "$era"

echo "# cache matching benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)"
echo "reference: ${tpt:-none}"
echo "cache: $cache_blocks blocks of $cache_sectors sectors, 90% mapped, metadata $(du -h "$cache" | cut -f1)"
echo "era: $era_blocks blocks of $era_sectors sectors, 4 writesets, metadata $(du -h "$era" | cut -f1)"
echo "runs: $runs alternating, median; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

fail=0
first_era=${eras%% *}
if [ -n "$tpt" ]; then
  "$tpt" cache_check "$cache" || { echo "the reference's cache_check refuses the cache"; exit 1; }
  # The origin blocks (of the cache's size) written since the era, from the era list in
  # era blocks; then every cache block the reference maps to one of them, as ranges.
  ratio=$((era_sectors / cache_sectors))
  "$tpt" cache_dump "$cache" >"$dir/cache-dump.xml"
  "$bin/era_invalidate" --written-since "$first_era" --format text "$era" |
    awk -v r="$ratio" -v dump="$dir/cache-dump.xml" '
      { for (b = $1; b < $2; b++) w[b] = 1 }
      END {
        FS = "\""
        while ((getline line < dump) > 0) {
          if (line !~ /<mapping /) continue
          split(line, f, "\"")
          if (int(f[4] / r) in w) print f[2]
        }
      }' | sort -n | awk '
        NR == 1 { b = $1; e = $1 + 1; next }
        $1 == e { e++; next }
        { print b, e; b = $1; e = $1 + 1 }
        END { if (NR) print b, e }' >"$dir/cache-want.txt"
  "$bin/era_invalidate" --written-since "$first_era" --cache-metadata "$cache" --format text "$era" |
    cmp -s - "$dir/cache-want.txt" ||
    { echo "era_invalidate --cache-metadata differs from the reference's cache_dump"; fail=1; }
  rm -f "$dir/cache-dump.xml"
fi

run() {
  local key=$1; shift
  if ! "$timer" "$dir/stderr.txt" "$@" >>"$dir/$key.times"; then
    echo "FAILED: $*: $(head -c 300 "$dir/stderr.txt")" >&2
    exit 1
  fi
}

pick() {
  sort -g -k"$2" "$1" | awk -v c="$2" -v w="$3" '{v[NR]=$c} END {print (w == "min") ? v[1] : v[int((NR+1)/2)]}'
}

rm -f "$dir"/*.times
for ((i = 0; i < 21; i++)); do run floor true; done
for ((i = 0; i < runs; i++)); do
  for e in $eras; do
    run "list-$e" "$bin/era_invalidate" --written-since "$e" --format text "$era"
    for f in text json; do
      run "$f-$e" "$bin/era_invalidate" --written-since "$e" --cache-metadata "$cache" --format "$f" "$era"
    done
  done
  [ -z "$tpt" ] || run dump "$tpt" cache_dump "$cache"
done

# row KEY LABEL TARGET_SECONDS: one line of the table, median (fastest) wall time, CPU, RSS.
row() {
  local t b c m verdict=""
  t=$(pick "$dir/$1.times" 1 median); b=$(pick "$dir/$1.times" 1 min)
  c=$(pick "$dir/$1.times" 3 median); m=$(( $(pick "$dir/$1.times" 2 median) / 1024 ))
  if [ -n "$3" ]; then
    if awk -v t="$t" -v l="$3" 'BEGIN {exit !(t < l)}' && [ "$m" -le 64 ]; then
      verdict="ok (< $3 s, <= 64 MiB)"
    else
      verdict="MISSED (< $3 s, <= 64 MiB)"; fail=1
    fi
  fi
  printf '| %-53s | %8.4f (%6.4f) s | %6.3f s | %4d MiB | %s\n' "$2" "$t" "$b" "$c" "$m" "$verdict"
}

echo "floor: starting and reaping a process that does nothing takes $(pick "$dir/floor.times" 1 median) s (median of 21)"
echo
printf '| %-53s | %-19s | %-8s | %-8s | %s\n' command "median (best)" CPU RSS target
printf '|%s|\n' "-------------------------------------------------------|---------------------|----------|----------|-------"
for e in $eras; do
  row "list-$e" "era_invalidate --written-since $e (era list only)" ""
  row "text-$e" "era_invalidate --written-since $e --cache-metadata" 1
  row "json-$e" "  the same, --format json" 1
done
[ -z "$tpt" ] || row dump "reference: pdata_tools cache_dump" ""
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $fail
