complete -c era_repair -s i -l input -d 'Damaged metadata device or file' -r -F
complete -c era_repair -s o -l output -d 'Device or pre-allocated file receiving the metadata' -r -F
complete -c era_repair -s q -l quiet -d 'Print nothing; report through the exit status only'
complete -c era_repair -l force -d 'Write even over what is neither zeros nor dm-era metadata of the same geometry'
complete -c era_repair -s h -l help -d 'Print help (see more with \'--help\')'
complete -c era_repair -s V -l version -d 'Print version'
