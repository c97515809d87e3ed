complete -c log_repair -l mark-clean -d 'Mark RANGES clean (BEGIN..END end exclusive, or N, comma-separated). Unsafe unless the legs are known identical there: needs --unsafe-legs-identical, --region-size and --length' -r
complete -c log_repair -l undo -d 'Put back what a run with --backup FILE overwrote: the log\'s bytes and the legs\'' -r -F
complete -c log_repair -l nr-regions -d 'Region count to write into the header (--rewrite-header, --force-resync)' -r
complete -c log_repair -l region-size -d 'Region size of the mirror in sectors, from its table (dmsetup table: the disk log\'s 2nd argument)' -r
complete -c log_repair -l length -d 'Length of the mirror in sectors, from its table (dmsetup table: the 2nd field)' -r
complete -c log_repair -l leg -d 'A mirror leg, in table order (leg 0 is the source), with its offset in sectors' -r
complete -c log_repair -l logical-block-size -d 'Logical block size of the log device in bytes (default: the device\'s, else 512)' -r
complete -c log_repair -l backup -d 'Save everything the run overwrites to FILE (a new file), for --undo' -r -F
complete -c log_repair -l format -d 'Report format: text (one line per step on stdout) or json (one object on stdout, also when the run fails: outcome "failed" and the error)' -r -f -a "text\t'Lines for people'
json\t'One JSON object on one line, for scripts'"
complete -c log_repair -l rewrite-header -d 'Rewrite the header {MiRr, 2, nr_regions}; the bits are kept. nr_regions comes from --nr-regions, from --region-size with --length, or stays as it is'
complete -c log_repair -l force-resync -d 'Mark every region dirty: the kernel resynchronises the whole mirror at the next activation. Always safe'
complete -c log_repair -l clear-stray-bits -d 'Clear the bits past the last region (the kernel does it anyway at activation)'
complete -c log_repair -l resync -d 'Offline resync: copy each dirty region from leg 0 to every other leg, fsync the legs, then mark those regions clean. Needs --region-size, --length and the legs in table order'
complete -c log_repair -l verify -d 'Compare each dirty region across the legs; mark clean those identical on every leg, report the others. Needs --region-size, --length and the legs in table order'
complete -c log_repair -l unsafe-legs-identical -d 'Confirms that the legs hold the same data in the --mark-clean ranges'
complete -c log_repair -l dry-run -d 'Print what would change; write nothing (legs included)'
complete -c log_repair -l force -d 'Repair a device that does not carry the disk-log magic'
complete -c log_repair -l clustered -d 'The log is a clustered-disk log of cmirrord (warns about host byte order)'
complete -c log_repair -s q -l quiet -d 'Print nothing on stderr; report through the exit status only'
complete -c log_repair -s h -l help -d 'Print help (see more with \'--help\')'
complete -c log_repair -s V -l version -d 'Print version'
