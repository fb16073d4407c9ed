"""`python -m shiftboard.cli`: the same as the `shiftboard` command."""

from shiftboard.cli import main

main()
