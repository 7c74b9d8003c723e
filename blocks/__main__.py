from blocks.cli import main

main()
