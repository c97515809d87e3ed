#!/usr/bin/env bash
# Every era tool against thin-provisioning-tools 1.3.3 (and Debian's 0.9 where installed),
# side by side on the same seeded synthetic metadata: wall time (median of alternating
# runs), peak memory, the ratio ours/reference, and the targets of BENCHMARKS.md.
#
#   benches/era_tools.sh [-n RUNS] [-s "SIZES"] [-w WRITESETS] [-r REFERENCE] [-m MAX]
#
#   -n RUNS       runs per command, alternating between the tools (default 5)
#   -s SIZES      origin block counts (default "1000000 10000000")
#   -w WRITESETS  writesets (default 4)
#   -r REFERENCE  thin-provisioning-tools 1.3.3: a source tree built with
#                 `cargo build --release`, or its pdata_tools binary
#                 (default $TPT, else ../tpt next to this repository)
#   -m MAX        run the reference only up to MAX blocks (default 10000000: at 1e8 its
#                 era_restore needs 15 GiB of memory and its era_dump minutes)
#
# Needs GNU time (/usr/bin/time) and bash 5. Work files go to target/bench (at 1e8
# blocks: 20 GB of XML and a 0.5 GB image). Outputs go to /dev/null; restores write
# to a preallocated file of the generated image's size. Exit status 1 if a target is
# missed. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

runs=5
sizes="1000000 10000000"
writesets=4
reference=${TPT:-$repo/../tpt}
ref_max=10000000
while getopts "n:s:w:r:m:" opt; do
  case $opt in
    n) runs=$OPTARG ;;
    s) sizes=$OPTARG ;;
    w) writesets=$OPTARG ;;
    r) reference=$OPTARG ;;
    m) ref_max=$OPTARG ;;
    *) sed -n '2,21p' "$0"; exit 2 ;;
  esac
done

[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is needed" >&2; exit 2; }
tpt=""
if [ -d "$reference" ]; then
  [ -x "$reference/target/release/pdata_tools" ] && tpt=$reference/target/release/pdata_tools
elif [ -x "$reference" ]; then
  tpt=$reference
fi
if [ -n "$tpt" ]; then
  version=$("$tpt" era_check -V 2>/dev/null || true)
  [ "$version" = "1.3.3" ] || echo "warning: the reference says version '$version', not 1.3.3" >&2
else
  echo "warning: thin-provisioning-tools not found at '$reference' (set TPT or -r): ours only" >&2
fi
debian=""
for d in /usr/sbin /sbin; do
  if [ -x "$d/era_check" ] && "$d/era_check" -V 2>/dev/null | grep -q '^0\.'; then debian=$d; fi
done

cargo build --release --bins --examples >/dev/null
bin=$repo/target/release
dir=$repo/target/bench
mkdir -p "$dir"

echo "# era tools benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)"
echo "reference: ${tpt:-none}${debian:+; Debian 0.9 in $debian}"
echo "runs: $runs alternating, median; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# run KEY COMMAND...: one timed run; appends "seconds KiB" to $dir/KEY.times. The
# command's stdout goes to /dev/null; a failure stops the benchmark.
run() {
  local key=$1; shift
  local t0 t1
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -f '%M' -o "$dir/time.txt" "$@" >/dev/null 2>"$dir/stderr.txt"; then
    echo "FAILED: $*: $(head -c 300 "$dir/stderr.txt")" >&2
    exit 1
  fi
  t1=$EPOCHREALTIME
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}') $(tail -1 "$dir/time.txt")" >>"$dir/$key.times"
}

# median FILE COLUMN
median() {
  sort -g -k"$2" "$1" | awk -v c="$2" '{v[NR]=$c} END {print v[int((NR+1)/2)]}'
}
# spread FILE: fastest-slowest seconds
spread() {
  sort -g -k1 "$1" | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.3f-%.3f", lo, hi}'
}

fail=0
# report KEY LABEL TARGET_RATIO MEM_LIMIT_MIB: one line of the table.
report() {
  local key=$1 label=$2 target=$3 limit=$4
  local ot om rt="" rm ratio verdict=""
  ot=$(median "$dir/ours-$key.times" 1); om=$(( $(median "$dir/ours-$key.times" 2) / 1024 ))
  if [ -s "$dir/tpt-$key.times" ]; then
    rt=$(median "$dir/tpt-$key.times" 1); rm=$(( $(median "$dir/tpt-$key.times" 2) / 1024 ))
    ratio=$(awk -v a="$ot" -v b="$rt" 'BEGIN {printf "%.3f", a / b}')
    if [ -n "$target" ]; then
      if awk -v r="$ratio" -v t="$target" 'BEGIN {exit !(r <= t)}'; then
        verdict="ok (<= $target)"
      else
        verdict="MISSED (> $target)"; fail=1
      fi
    fi
    printf '| %-24s | %8.3f s | %5d MiB | %8.3f s | %6d MiB | %6s | %s\n' "$label" "$ot" "$om" "$rt" "$rm" "$ratio" "$verdict"
  else
    printf '| %-24s | %8.3f s | %5d MiB | %10s | %10s | %6s | %s\n' "$label" "$ot" "$om" "-" "-" "-" ""
  fi
  if [ -n "$limit" ] && [ "$om" -gt "$limit" ]; then
    echo "  ^ ours takes more than $limit MiB"; fail=1
  fi
  echo "    $label: ours $(spread "$dir/ours-$key.times") s${rt:+, reference $(spread "$dir/tpt-$key.times") s}" >>"$dir/spread.txt"
}

# cmd WHO TOOL: the command line of TOOL in C (ours are separate binaries, the
# reference one multi-call binary).
cmd() {
  if [ "$1" = tpt ]; then C=("$tpt" "$2"); else C=("$bin/$2"); fi
}

for n in $sizes; do
  xml=$dir/era-$n-$writesets.xml
  img=$dir/era-$n-$writesets.img
  [ -s "$img" ] || "$bin/examples/gen_era" --nr-blocks "$n" --writesets "$writesets" --seed 1 --binary -o "$img"
  [ -s "$xml" ] || "$bin/examples/gen_era" --nr-blocks "$n" --writesets "$writesets" --seed 1 -o "$xml"
  out_size=$(stat -c %s "$img")
  rm -f "$dir"/*.times "$dir/spread.txt"
  with_ref=""
  [ -n "$tpt" ] && [ "$n" -le "$ref_max" ] && with_ref=1

  # restore outputs: one per tool, preallocated once (tpt needs an existing output)
  for o in ours tpt ours-pipe; do
    truncate -s 0 "$dir/out-$o.img"; truncate -s "$out_size" "$dir/out-$o.img"
  done

  for ((i = 0; i < runs; i++)); do
    for who in ours tpt; do
      [ $who = ours ] || [ -n "$with_ref" ] || continue
      cmd $who era_check; run $who-check "${C[@]}" "$img"
      cmd $who era_invalidate; run $who-invalidate "${C[@]}" --written-since 10 "$img"
      cmd $who era_dump; run $who-dump "${C[@]}" "$img"
      run $who-logical "${C[@]}" --logical "$img"
      cmd $who era_restore; run $who-restore "${C[@]}" -i "$xml" -o "$dir/out-$who.img"
      if [ $who = ours ]; then
        run ours-pipe bash -c 'cat "$1" | "$2" -i - -o "$3"' - "$xml" "$bin/era_restore" "$dir/out-ours-pipe.img"
      fi
      cmd $who era_repair; run $who-repair "${C[@]}" -i "$img" -o "$dir/out-$who.img"
    done
  done
  # 1.3.3 cannot read a pipe: the pipe row compares with its restore from the file.
  [ -s "$dir/tpt-restore.times" ] && cp "$dir/tpt-restore.times" "$dir/tpt-pipe.times"

  # Correctness on the side: every restore dumps back to the XML, byte for byte.
  "$bin/era_restore" -i "$xml" -o "$dir/out-ours.img"
  cmp -s "$dir/out-ours.img" "$dir/out-ours-pipe.img" || { echo "pipe and file restores differ"; fail=1; }
  "$bin/era_dump" "$dir/out-ours.img" | cmp -s - "$xml" || { echo "our restore does not dump back to the XML"; fail=1; }
  if [ -n "$with_ref" ]; then
    "$tpt" era_restore -i "$xml" -o "$dir/out-tpt.img"
    "$bin/era_dump" "$dir/out-tpt.img" | cmp -s - "$xml" || { echo "the reference's restore does not dump back to the XML"; fail=1; }
    "$tpt" era_dump "$img" | cmp -s - "$xml" || { echo "the reference's era_dump differs from ours"; fail=1; }
  fi

  # Memory: the writesets' bitmaps (nr_blocks / 8 bytes each) plus fixed buffers.
  restore_mib=$(( n * writesets / 8 / 1048576 + 40 ))
  [ "$restore_mib" -lt 64 ] && restore_mib=64
  logical_mib=$(( n * writesets / 8 / 1048576 + 40 ))
  echo "## $n blocks, $writesets writesets: XML $(du -h "$xml" | cut -f1), image $(du -h "$img" | cut -f1)"
  echo
  echo "| tool                     |    ours    |  ours RSS | reference  |   ref RSS  | ratio  | target"
  echo "|--------------------------|------------|-----------|------------|------------|--------|-------"
  report check "era_check" 0.5 64
  report invalidate "era_invalidate" 0.15 64
  report dump "era_dump" 0.1 64
  report logical "era_dump --logical" 0.1 "$logical_mib"
  report restore "era_restore" 0.2 "$restore_mib"
  report pipe "era_restore -i - (pipe)" 0.2 "$restore_mib"
  report repair "era_repair" "" "$logical_mib"
  echo
  echo "(the pipe row's reference is its era_restore from the file: 1.3.3 cannot read a pipe)"
  echo "fastest-slowest of the runs:"
  cat "$dir/spread.txt"

  if [ -n "$debian" ] && [ "$n" -le "$ref_max" ]; then
    echo
    echo "Debian thin-provisioning-tools $("$debian/era_check" -V 2>&1 | head -1), one run each:"
    truncate -s 0 "$dir/out-deb.img"; truncate -s "$out_size" "$dir/out-deb.img"
    for c in "era_check $img" "era_invalidate --written-since 10 $img" "era_dump $img" \
             "era_restore -i $xml -o $dir/out-deb.img"; do
      rm -f "$dir/deb.times"
      # shellcheck disable=SC2086
      run deb "$debian/"$c
      printf '  %-24s %8.3f s %6d MiB\n' "${c%% *}" "$(cut -d' ' -f1 "$dir/deb.times")" $(( $(cut -d' ' -f2 "$dir/deb.times") / 1024 ))
    done
  fi
  echo
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $fail
