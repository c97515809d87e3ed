complete -c era_check -l live -d 'Read the live era target DM_NAME through a metadata snapshot taken and dropped for this run' -r
complete -c era_check -l format -d 'Report format: text (one line per finding on stderr) or json (one object on stdout)' -r -f -a "text\t'Lines for people'
json\t'One JSON object on one line, for scripts'"
complete -c era_check -l checkpoint -d 'With --live: send checkpoint before taking the snapshot, and take the era from the status line after it'
complete -c era_check -l use-held-snapshot -d 'With --live: read the snapshot someone else holds instead of refusing, and leave it held'
complete -c era_check -l ignore-non-fatal-errors -d 'Fail only on errors: warnings (leaks, stray bits and similar) are still reported'
complete -c era_check -l metadata-snap -l metadata-snapshot -d 'Check only the held metadata snapshot; the device is opened without O_EXCL so that a live target\'s metadata can be read'
complete -c era_check -s q -l quiet -d 'Print nothing; report through the exit status only'
complete -c era_check -l super-block-only -d 'Check the superblock only'
complete -c era_check -s h -l help -d 'Print help (see more with \'--help\')'
complete -c era_check -s V -l version -d 'Print version'
