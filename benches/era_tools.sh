#!/usr/bin/env bash
# Every era tool against thin-provisioning-tools 1.3.3 (and Debian's 0.9 where installed),
# side by side on the same seeded synthetic metadata: wall time (median of alternating
# runs; also the fastest, and CPU time), peak memory, the ratio ours/reference, and the
# targets of BENCHMARKS.md.
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
# Each run is timed by examples/bench_timer.rs from its start to its reaping, with no shell
# or GNU time started around it. Needs bash 5. Work files go to target/bench (at 1e8
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
    *) sed -n '2,22p' "$0"; exit 2 ;;
  esac
done

. "$repo/benches/reference.sh"
find_reference "$reference" era_check
debian=""
for d in /usr/sbin /sbin; do
  if [ -x "$d/era_check" ] && "$d/era_check" -V 2>/dev/null | grep -q '^0\.'; then debian=$d; fi
done

build_ours "$repo"
gen=$examples/gen_era
timer=$examples/bench_timer
dir=$repo/target/bench
mkdir -p "$dir"

echo "# era tools benchmark, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB, Linux $(uname -r)"
echo "reference: ${tpt:-none}${debian:+; Debian 0.9 in $debian}"
echo "runs: $runs alternating, median; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# run KEY COMMAND...: one timed run; appends "seconds KiB cpu-seconds" to $dir/KEY.times.
# The command's stdout goes to /dev/null; a failure stops the benchmark.
run() {
  local key=$1; shift
  if ! "$timer" "$dir/stderr.txt" "$@" >>"$dir/$key.times"; then
    echo "FAILED: $*: $(head -c 300 "$dir/stderr.txt")" >&2
    exit 1
  fi
}

# pick FILE COLUMN median|min
pick() {
  sort -g -k"$2" "$1" | awk -v c="$2" -v w="$3" '{v[NR]=$c} END {print (w == "min") ? v[1] : v[int((NR+1)/2)]}'
}

rm -f "$dir/floor.times"
for ((i = 0; i < 21; i++)); do run floor true; done
echo "floor: starting and reaping a process that does nothing takes $(pick "$dir/floor.times" 1 median) s (median of 21)"
echo

fail=0
# report KEY LABEL TARGET_RATIO MEM_LIMIT_MIB: one line of the table. Times are the median
# of the runs and, in brackets, the fastest; the verdict is on the medians.
report() {
  local key=$1 label=$2 target=$3 limit=$4
  local o="$dir/ours-$key.times" r="$dir/tpt-$key.times"
  local ot ob oc om rt rb rc rm ratio best verdict=""
  ot=$(pick "$o" 1 median); ob=$(pick "$o" 1 min); oc=$(pick "$o" 3 median)
  om=$(( $(pick "$o" 2 median) / 1024 ))
  if [ -s "$r" ]; then
    rt=$(pick "$r" 1 median); rb=$(pick "$r" 1 min); rc=$(pick "$r" 3 median)
    rm=$(( $(pick "$r" 2 median) / 1024 ))
    ratio=$(awk -v a="$ot" -v b="$rt" 'BEGIN {printf "%.3f", a / b}')
    best=$(awk -v a="$ob" -v b="$rb" 'BEGIN {printf "%.3f", a / b}')
    if [ -n "$target" ]; then
      if awk -v r="$ratio" -v t="$target" 'BEGIN {exit !(r <= t)}'; then
        verdict="ok (<= $target)"
      else
        verdict="MISSED (> $target)"; fail=1
      fi
    fi
    printf '| %-23s | %8.4f (%6.4f) s | %6.3f s | %4d MiB | %8.4f (%6.4f) s | %6.3f s | %4d MiB | %5s (%5s) | %s\n' \
      "$label" "$ot" "$ob" "$oc" "$om" "$rt" "$rb" "$rc" "$rm" "$ratio" "$best" "$verdict"
  else
    printf '| %-23s | %8.4f (%6.4f) s | %6.3f s | %4d MiB | %19s | %8s | %8s | %13s |\n' \
      "$label" "$ot" "$ob" "$oc" "$om" "-" "-" "-" "-"
  fi
  if [ -n "$limit" ] && [ "$om" -gt "$limit" ]; then
    echo "  ^ ours takes more than $limit MiB"; fail=1
  fi
}

# cmd WHO TOOL: the command line of TOOL in C (ours are separate binaries, the
# reference one multi-call binary).
cmd() {
  if [ "$1" = tpt ]; then C=("$tpt" "$2"); else C=("$bin/$2"); fi
}

for n in $sizes; do
  xml=$dir/era-$n-$writesets.xml
  img=$dir/era-$n-$writesets.img
  [ -s "$img" ] || "$gen" --nr-blocks "$n" --writesets "$writesets" --seed 1 --binary -o "$img"
  [ -s "$xml" ] || "$gen" --nr-blocks "$n" --writesets "$writesets" --seed 1 -o "$xml"
  out_size=$(stat -c %s "$img")
  rm -f "$dir"/*.times
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
    # 1.3.3 leaves out the final newline that 0.9 and we write.
    { "$tpt" era_dump "$img"; echo; } | cmp -s - "$xml" || { echo "the reference's era_dump differs from ours"; fail=1; }
  fi

  # Memory: the writesets' bitmaps (nr_blocks / 8 bytes each) plus fixed buffers.
  restore_mib=$(( n * writesets / 8 / 1048576 + 40 ))
  [ "$restore_mib" -lt 64 ] && restore_mib=64
  logical_mib=$(( n * writesets / 8 / 1048576 + 40 ))
  echo "## $n blocks, $writesets writesets: XML $(du -h "$xml" | cut -f1), image $(du -h "$img" | cut -f1)"
  echo
  printf '| %-23s | %-19s | %-8s | %-8s | %-19s | %-8s | %-8s | %-13s | %s\n' \
    tool "ours: median (best)" CPU RSS "reference" CPU RSS "ratio (best)" target
  printf '|%s|\n' "-------------------------|---------------------|----------|----------|---------------------|----------|----------|---------------|-------"
  report check "era_check" 0.5 64
  report invalidate "era_invalidate" 0.15 64
  report dump "era_dump" 0.1 64
  report logical "era_dump --logical" 0.1 "$logical_mib"
  report restore "era_restore" 0.2 "$restore_mib"
  report pipe "era_restore -i - (pipe)" 0.2 "$restore_mib"
  report repair "era_repair" "" "$logical_mib"
  echo
  echo "(CPU: user + system seconds, median. The pipe row's reference is its era_restore from"
  echo "the file: 1.3.3 cannot read a pipe.)"

  if [ -n "$debian" ] && [ "$n" -le "$ref_max" ]; then
    echo
    echo "Debian thin-provisioning-tools $("$debian/era_check" -V 2>&1 | head -1), one run each:"
    truncate -s 0 "$dir/out-deb.img"; truncate -s "$out_size" "$dir/out-deb.img"
    for c in "era_check $img" "era_invalidate --written-since 10 $img" "era_dump $img" \
             "era_restore -i $xml -o $dir/out-deb.img"; do
      rm -f "$dir/deb.times"
      # shellcheck disable=SC2086
      run deb "$debian/"$c
      printf '  %-24s %8.3f s %6d MiB\n' "${c%% *}" "$(cut -d' ' -f1 "$dir/deb.times")" \
        $(( $(cut -d' ' -f2 "$dir/deb.times") / 1024 ))
    done
  fi
  echo
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $fail
