complete -c era_metadata_size -l nr-blocks -d 'Origin blocks (the last one may be partial)' -r
complete -c era_metadata_size -l origin-size -d 'Origin size: bytes, or with a suffix s (sectors), k, m, g, t, p (powers of 1024)' -r
complete -c era_metadata_size -l block-size -d 'Origin block size in 512-byte sectors, as in the era table line' -r
complete -c era_metadata_size -l writesets -d 'Archived writesets that may wait to be digested at the same time (each checkpoint archives one; a live backup run with --checkpoint archives two)' -r
complete -c era_metadata_size -s u -l units -d 'Units of the answer, rounded up' -r -f -a "bytes\t'Bytes'
sectors\t'512-byte sectors'
blocks\t'4096-byte metadata blocks'
kib\t'KiB (1024 bytes)'
mib\t'MiB'
gib\t'GiB'"
complete -c era_metadata_size -l format -d 'text: the size; json: the size and its parts, in metadata blocks' -r -f -a "text\t'The size and its unit'
json\t'The size and its parts, in metadata blocks'"
complete -c era_metadata_size -s n -l numeric-only -d 'Print the number only'
complete -c era_metadata_size -s q -l quiet -d 'Print nothing on stderr; report through the exit status only'
complete -c era_metadata_size -s h -l help -d 'Print help (see more with \'--help\')'
complete -c era_metadata_size -s V -l version -d 'Print version'
