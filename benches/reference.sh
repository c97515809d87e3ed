# Sourced by the benchmark scripts: finds thin-provisioning-tools 1.3.3, the reference.
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
