"""The command lines' shared parser: a bad argument is one line on stderr and exit status 2, before anything runs."""
from __future__ import annotations

import argparse
from typing import NoReturn

from lib.profiles import PROFILES


class Parser(argparse.ArgumentParser):
    """`argparse` with a one-line error (no usage block: `--help` has it) and a `--profile` option."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def add_profile(self) -> None:
        self.add_argument("--profile", default="quick", choices=PROFILES, help="smoke | quick | full (default: quick)")
