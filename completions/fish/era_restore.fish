complete -c era_restore -s i -l input -d 'XML input: a file, a pipe, or - for stdin' -r -F
complete -c era_restore -s o -l output -d 'Device or pre-allocated file receiving the metadata' -r -F
complete -c era_restore -s q -l quiet -d 'Print nothing; report through the exit status only'
complete -c era_restore -l force -d 'Write even over what is neither zeros nor dm-era metadata of the same geometry'
complete -c era_restore -s h -l help -d 'Print help (see more with \'--help\')'
complete -c era_restore -s V -l version -d 'Print version'
