"""What the command lines share: a one-line error parser, `--profile`, and the options that describe your data.

A bad argument is one line on stderr and exit status 2, before anything trains.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from lib import profiles
from lib.paths import check_experiment
from lib.source import TABLE_SUFFIXES, DataError, DataSource
from lib.train_config import MAX_SEED


def seeds(text: str) -> list[int]:
    """`--seeds 0,1,2`: whole numbers in numpy's range, each once (a repeated seed is the same run twice)."""
    try:
        values = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes whole numbers separated by commas, e.g. 0,1,2; got {text!r}")
    if any(not 0 <= s <= MAX_SEED for s in values):
        raise argparse.ArgumentTypeError(f"--seeds must lie in 0..{MAX_SEED}, got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"--seeds names a seed twice ({text!r}): each seed is one run")
    return values


def experiment_name(text: str) -> str:
    """`--experiment NAME`: a plain name (`lib.paths.check_experiment`), checked before anything is written."""
    try:
        return check_experiment(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _profile(name: str) -> profiles.Profile:
    try:
        return profiles.get(name)
    except profiles.ProfileError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


FILE_OPTIONS = ("text_column", "label_column", "label_names", "text_pair_column", "group_column", "split_column",
                "validation", "test", "sep", "encoding")
"""The options that describe a file of yours (`add_data_options`)."""


class Parser(argparse.ArgumentParser):
    """`argparse` with a one-line error (no usage block: `--help` has it) and the workbook's shared options."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def add_profile(self) -> None:
        """`--profile NAME`, resolved here, once, into a `lib.profiles.Profile` (`args.profile`)."""
        self.add_argument("--profile", default="quick", type=_profile, metavar="{smoke,quick,full}",
                          help="smoke | quick | full (default: quick)")

    def add_data_options(self, required: bool) -> None:
        """--data and the options of a `lib.source.DataSource`."""
        g = self.add_argument_group("your data (CSV, TSV, JSON Lines, Parquet, a save_to_disk folder, a hub name)")
        g.add_argument("--data", required=required, help="the labelled file (its training rows, or all rows), or a "
                       "hub data set such as glue/sst2 (online; its own splits)")
        g.add_argument("--text-column", default="text", help="the column with the text (default: text)")
        g.add_argument("--label-column", default="label", help="the column with the class (default: label)")
        g.add_argument("--label-names", help="class names in label order, comma-separated, e.g. ham,spam for 0/1")
        g.add_argument("--text-pair-column", help="a second text column, for sentence-pair tasks")
        g.add_argument("--group-column", help="rows of one group (a film, an author) stay in one split")
        g.add_argument("--split-column", help="a column naming each row's split: train / validation / test")
        g.add_argument("--validation", help="a separate validation file with the same columns")
        g.add_argument("--test", help="a separate test file with the same columns")
        g.add_argument("--sep", help="the field separator (default: detected; .tsv means tab)")
        g.add_argument("--encoding", help="the file's encoding (default: UTF-8, else latin-1 with a note)")

    def source(self, args: argparse.Namespace) -> DataSource | str | None:
        """The `DataSource` the options describe (None without --data; a name that is no file and not named like
        one is a shipped or hub data set, e.g. glue/sst2, its columns found by name); a bad one is one line."""
        if not args.data:
            return None
        if not Path(args.data).exists() and Path(args.data).suffix.lower() not in TABLE_SUFFIXES:
            given = [f"--{k.replace('_', '-')}" for k in FILE_OPTIONS if getattr(args, k) != self.get_default(k)]
            if given:
                self.error(f"file options ({' '.join(given)}) describe a file, but {args.data!r} is no file: a "
                           "shipped or hub data set's columns are found by name (to name them, save it with "
                           "DatasetDict.save_to_disk and pass that folder)")
            return args.data
        try:
            return DataSource(
                args.data, args.text_column, args.label_column,
                tuple(n.strip() for n in args.label_names.split(",")) if args.label_names else None,
                args.text_pair_column, args.group_column, args.split_column, args.validation, args.test,
                args.sep, args.encoding,
            )
        except DataError as err:
            self.error(str(err))
