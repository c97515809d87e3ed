complete -c log_dump -l format -d 'Output format: xml (read back by log_restore), json (for scripts) or text' -r -f -a "xml\t'Read back by log_restore'
json\t'For scripts'
text\t'For people'"
complete -c log_dump -l nr-regions -d 'Read the bits of N regions instead of the header\'s nr_regions' -r
complete -c log_dump -l region-size -d 'Region size of the mirror in sectors (needs --length): adds sector ranges' -r
complete -c log_dump -l length -d 'Length of the mirror in sectors (needs --region-size): checks nr_regions against it' -r
complete -c log_dump -l logical-block-size -d 'Logical block size of the log device in bytes (default: the device\'s, else 512)' -r
complete -c log_dump -s o -l output -d 'Write the report to FILE instead of stdout' -r -F
complete -c log_dump -l clustered -d 'The log is a clustered-disk log of cmirrord (warns about host byte order)'
complete -c log_dump -s q -l quiet -d 'Print nothing on stderr; report through the exit status only'
complete -c log_dump -s h -l help -d 'Print help (see more with \'--help\')'
complete -c log_dump -s V -l version -d 'Print version'
