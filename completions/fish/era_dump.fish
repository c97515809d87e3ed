complete -c era_dump -l live -d 'Read the live era target DM_NAME through a metadata snapshot taken and dropped for this run' -r
complete -c era_dump -s o -l output -d 'Write the XML to FILE instead of stdout' -r -F
complete -c era_dump -l checkpoint -d 'With --live: send checkpoint before taking the snapshot, and take the era from the status line after it'
complete -c era_dump -l use-held-snapshot -d 'With --live: read the snapshot someone else holds instead of refusing, and leave it held'
complete -c era_dump -l logical -d 'Fold every writeset into the era array (newest writeset wins) and print only the era array'
complete -c era_dump -l metadata-snap -l metadata-snapshot -d 'Dump the held metadata snapshot; the device is opened without O_EXCL so that a live target\'s metadata can be read'
complete -c era_dump -s r -l repair -d 'Skip what cannot be read, report it on stderr, and still write XML that era_restore accepts (unreadable writeset words count as written, unreadable era-array entries as the current era)'
complete -c era_dump -s q -l quiet -d 'Print nothing on stderr; report through the exit status only'
complete -c era_dump -s h -l help -d 'Print help (see more with \'--help\')'
complete -c era_dump -s V -l version -d 'Print version'
