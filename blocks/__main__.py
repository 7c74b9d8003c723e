from blocks import main

main()
