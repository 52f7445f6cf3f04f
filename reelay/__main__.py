from reelay.cli import main

main()
