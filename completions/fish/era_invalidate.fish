complete -c era_invalidate -l live -d 'Read the live era target DM_NAME through a metadata snapshot taken and dropped for this run' -r
complete -c era_invalidate -l written-since -d 'List the blocks written in this era or later (0 lists every block)' -r
complete -c era_invalidate -s o -l output -d 'Write to FILE instead of stdout' -r -F
complete -c era_invalidate -l format -d 'Output format [default: xml, json with --live]' -r -f -a "xml\t'blocks element of range and block elements, as thin-provisioning-tools writes it'
text\t'One "BEGIN END" line per run'
json\t'One object: written_since, units, block_size_sectors, nr_blocks and ranges, a list of {"begin":B,"end":E}'"
complete -c era_invalidate -l units -d 'Units of the ranges (text and json only; xml is always in blocks)' -r -f -a "blocks\t'Origin blocks'
sectors\t'512-byte sectors'
bytes\t'Bytes'"
complete -c era_invalidate -l cache-metadata -d 'List the blocks of this dm-cache to invalidate instead of origin blocks' -r -F
complete -c era_invalidate -l cache -d 'With --live: invalidate, in the live dm-cache CACHE, the cache blocks that hold blocks written in era N or later' -r
complete -c era_invalidate -l checkpoint -d 'With --live: send checkpoint before taking the snapshot, and take the era from the status line after it'
complete -c era_invalidate -l use-held-snapshot -d 'With --live: read the snapshot someone else holds instead of refusing, and leave it held'
complete -c era_invalidate -l metadata-snapshot -l metadata-snap -d 'Read the held metadata snapshot of a live target (the device is opened without O_EXCL)'
complete -c era_invalidate -l messages -d 'With --cache-metadata: print the invalidate_cblocks messages, one a line, at most 1000 ranges each, for `dmsetup message CACHE 0 LINE` (the cache in passthrough mode)'
complete -c era_invalidate -l dry-run -d 'With --cache: read and match, list what would be invalidated, send nothing (the cache is still suspended while its mapping is read)'
complete -c era_invalidate -s q -l quiet -d 'Print nothing on stderr; report through the exit status only'
complete -c era_invalidate -s h -l help -d 'Print help (see more with \'--help\')'
complete -c era_invalidate -s V -l version -d 'Print version'
