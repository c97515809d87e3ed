complete -c log_restore -s i -l input -d 'The XML written by log_dump' -r -F
complete -c log_restore -s o -l output -d 'The log device or image to write; it must exist and hold the log\'s buffer' -r -F
complete -c log_restore -l logical-block-size -d 'Logical block size of the log device in bytes (default: the device\'s, else 512)' -r
complete -c log_restore -l force -d 'Write even over what is neither zeros nor a disk log of the same region count'
complete -c log_restore -s q -l quiet -d 'Print nothing on stderr; report through the exit status only'
complete -c log_restore -s h -l help -d 'Print help (see more with \'--help\')'
complete -c log_restore -s V -l version -d 'Print version'
