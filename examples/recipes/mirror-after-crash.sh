#!/bin/bash
# Bringing a mirror back after a crash, with the mirror inactive on every cluster node:
# see what the log says, find which dirty regions really differ, then resynchronise them
# offline (leg 0 is the source, as for the kernel), keeping a backup to undo it.
#
# Usage: mirror-after-crash.sh REGION_SIZE LENGTH LOG LEG0 LEG1 [LEG...]
#
# REGION_SIZE and LENGTH are the mirror's, in sectors, from its table: `dmsetup table`
# shows the mirror line as "START LENGTH mirror disk 2 LOG_DEVICE REGION_SIZE ...", and
# `lvs --units s -o +regionsize,size VG/LV` shows both. The legs go in table order.
# BACKUP names the backup file (default mirror-log-undo.bak; it must not exist yet):
# `log_repair --undo "$BACKUP" LOG` puts back everything the resync overwrote.
set -euo pipefail

if [ $# -lt 5 ]; then
    echo "usage: $0 REGION_SIZE LENGTH LOG LEG0 LEG1 [LEG...]" >&2
    exit 2
fi
geometry=(--region-size "$1" --length "$2")
log=$3
shift 3
legs=()
for leg in "$@"; do
    legs+=(--leg "$leg")
done
backup=${BACKUP:-mirror-log-undo.bak}
if [ -e "$backup" ]; then
    echo "$0: $backup exists: it undoes an earlier run (log_repair --undo $backup LOG);" \
        "keep it, and name another with BACKUP=FILE" >&2
    exit 1
fi

log_dump --format text "${geometry[@]}" "$log"
log_repair --verify --dry-run "${geometry[@]}" "${legs[@]}" "$log"
log_repair --resync --backup "$backup" "${geometry[@]}" "${legs[@]}" "$log"
