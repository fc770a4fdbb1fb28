"""`python -m hub.cli` runs the synchub command."""

from hub.cli import main

main()
