# Sourced by the benchmark scripts: finds thin-provisioning-tools 1.3.3, the reference, and
# builds ours.
#
#   find_reference REFERENCE TOOL
#
# REFERENCE is a checkout of it (its target/release/pdata_tools is used) or the binary
# itself; TOOL is a subcommand asked for its version. Sets `tpt` to the binary, or to ""
# with a warning when there is none.
find_reference() {
  tpt=""
  if [ -d "$1" ]; then
    [ -x "$1/target/release/pdata_tools" ] && tpt=$1/target/release/pdata_tools
  elif [ -x "$1" ]; then
    tpt=$1
  fi
  if [ -n "$tpt" ]; then
    local version
    version=$("$tpt" "$2" -V 2>/dev/null || true)
    [ "$version" = "1.3.3" ] || echo "warning: the reference says version '$version', not 1.3.3" >&2
  else
    echo "warning: thin-provisioning-tools not found at '$1' (set TPT or -r): ours only" >&2
  fi
}

# build_ours REPO: builds the tools as `make install` builds them, alone: built together
# with the examples, the library is compiled again with the dev-dependencies' features
# unified in (clap's, here), which changes its code generation (era_dump's inner loop came
# out 2.5 times slower so). The examples (generators, bench_timer) are built apart, in a
# target directory of their own. Sets `bin` (the tools' folder) and `examples`.
build_ours() {
  cargo build --release --bins >/dev/null
  cargo build --release --examples --target-dir "$1/target/bench-gen" >/dev/null
  bin=$1/target/release
  examples=$1/target/bench-gen/release/examples
}
