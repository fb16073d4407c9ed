"""The shiftboard command line (`shiftboard --help`)."""

from __future__ import annotations


def main() -> None:
    from shiftboard.cli.app import main as run

    run()
