from sdd_tui.cli import main

main()
