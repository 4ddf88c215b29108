"""A user's own labelled data: where it is, which columns mean what, and how to read it.

`DataSource` describes a CSV (or TSV) file: the text column, the label column,
optional class names (so `0/1` reads `ham/spam`), an optional second text for
sentence-pair tasks, an optional group column (all rows of one group — a film,
an author, a review — land in the same split, so nothing leaks), and optional
given splits (a `split` column, or separate validation and test files). Every
layer carries it: `load_data`, `FinetuneSpec(data=...)`, `python -m
lib.finetune`, `python -m lib.sweep --data`, notebook 09. Its identity holds
the content fingerprint of every file it reads, so an edited file is a new run.

`read_source` turns it into a frame with columns `text`, `label` (class index),
and where given `text_pair`, `group`, `split`, plus the class names; every
problem is one `DataError` that says what is wrong and how to fix it.
"""
from __future__ import annotations

import codecs
import functools
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lib.paths import located, plain_name, portable

SPLIT_NAMES = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation",
               "dev": "validation", "test": "test"}
DELIMITERS = (",", ";", "\t", "|")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet")
"""What a file of your own may be: delimited text, JSON Lines (what `datasets` exports), Parquet."""
SAVED_DATASET = "dataset_dict.json"
"""The file `DatasetDict.save_to_disk` writes in its folder: such a folder is data with its own splits."""


def is_saved_dataset(path: str | Path) -> bool:
    """A folder written by `datasets.DatasetDict.save_to_disk` (a hub data set kept offline, its splits intact)."""
    return (located(str(path)) / SAVED_DATASET).is_file()


class DataError(ValueError):
    """Bad data input: the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class DataSource:
    """A labelled CSV/TSV file of your own and what its columns mean."""

    path: str
    text_column: str = "text"
    label_column: str = "label"
    label_names: tuple[str, ...] | None = None  # class names in label order (0, 1, ... or the sorted values)
    text_pair_column: str | None = None  # second text of a sentence-pair task
    group_column: str | None = None  # rows of one group stay in one split
    split_column: str | None = None  # values train / validation / test (also val, valid, dev)
    validation_path: str | None = None  # separate files with the same columns
    test_path: str | None = None
    sep: str | None = None  # None: detected from the header (",", ";", tab, "|"); .tsv means tab
    encoding: str | None = None  # None: UTF-8, falling back to latin-1 with a note

    def __post_init__(self) -> None:
        if isinstance(self.path, os.PathLike):
            object.__setattr__(self, "path", os.fspath(self.path))
        for field in ("path", "text_column", "label_column"):
            if not isinstance(getattr(self, field), str) or not getattr(self, field):
                raise DataError(f"{field} must name a file or a column, got {getattr(self, field)!r}.")
        if isinstance(self.label_names, str):
            raise DataError(f"label_names is a list of class names, e.g. ('neg', 'pos'), got the string "
                            f"{self.label_names!r}.")
        if self.label_names is not None and not isinstance(self.label_names, tuple):
            object.__setattr__(self, "label_names", tuple(self.label_names))
        for field in ("path", "validation_path", "test_path"):  # one spelling per file, from any working directory
            if getattr(self, field) is not None:
                object.__setattr__(self, field, str(portable(getattr(self, field))))
        for path in self.files():
            if located(path).is_dir() and not (path == self.path and is_saved_dataset(path)):
                raise DataError(f"{path} is a folder; name the labelled file inside it (or a folder written by "
                                "DatasetDict.save_to_disk).")
            if not located(path).exists():
                raise DataError(f"No such file: {path}.")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise DataError(f"Unknown encoding {self.encoding!r}; e.g. utf-8, latin-1, utf-16, cp1252.") from None
        if self.split_column and (self.validation_path or self.test_path):
            raise DataError("Give the splits either as a split column or as separate files, not both.")
        if is_saved_dataset(self.path) and (self.split_column or self.validation_path or self.test_path):
            raise DataError(f"{self.path} is a saved DatasetDict: it brings its own splits; drop the split options.")

    def files(self) -> list[str]:
        return [p for p in (self.path, self.validation_path, self.test_path) if p]

    @property
    def label(self) -> str:
        """A short readable name (the file's stem, spelled as a plain name), for tables and experiment names."""
        return plain_name(Path(self.path).stem)

    def identity(self) -> dict:
        """The description plus the content fingerprint of every file it reads (the run store leaves the
        paths out of the run id: where a file lives does not change what a run computes, its content does)."""
        return asdict(self) | {"fingerprint": [file_fingerprint(f) for p in self.files() for f in _content(p)]}


def _content(path: str) -> list[Path]:
    """The files whose bytes a path's data are: the file, or every file of a saved DatasetDict folder."""
    where = located(path)
    return sorted(f for f in where.rglob("*") if f.is_file()) if where.is_dir() else [where]



def file_fingerprint(path: str | Path) -> str:
    """sha256 of a file's bytes (first 16 hex digits), cached per (path, size, mtime) within a process."""
    stat = Path(path).stat()
    return _fingerprint(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _fingerprint(path: str, size: int, mtime: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------ reading
def _decode(path: Path, encoding: str | None) -> tuple[str, str]:
    raw = path.read_bytes()
    if encoding:
        return raw.decode(encoding), encoding
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's "Unicode text"; latin-1 would garble it
        print(f"note: {path.name} is UTF-16 (it starts with a byte-order mark); read it as such.")
        return raw.decode("utf-16"), "utf-16"
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        print(f"note: {path.name} is not valid UTF-8; read it as latin-1 (pass encoding=... / --encoding to choose).")
        return raw.decode("latin-1"), "latin-1"


def _delimiter(path: Path, header: str, sep: str | None) -> str:
    if sep:
        return sep
    if path.suffix.lower() == ".tsv":
        return "\t"
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (counts[d], d == ","))
    if best != "," and counts[best] > counts[","]:
        shown = "tab" if best == "\t" else repr(best)
        print(f"note: {path.name} looks {shown}-separated; read it so (pass sep=... / --sep to choose).")
        return best
    return ","


def read_table(path: str | Path, sep: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    """A CSV/TSV file as a frame (encoding and separator detected, with a note, unless given), or a JSON Lines or
    Parquet file (the formats `datasets` exports)."""
    import io

    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".json", ".parquet"):
        return _read_columnar(path)
    text, _ = _decode(path, encoding)
    if not text.strip():
        raise DataError(f"{path} is empty: it needs a header row and rows of at least two classes.")
    delimiter = _delimiter(path, text.splitlines()[0], sep)
    try:  # only an empty field is missing: a text or class spelled None, NA or null stays what it says
        return pd.read_csv(io.StringIO(text), sep=delimiter, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as err:
        reason = " ".join(str(err).split())  # pandas' message spans lines; the error is one
        raise DataError(f"Could not parse {path} as a {delimiter!r}-separated file ({reason}); pass sep=...") from None


def _read_columnar(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:  # one JSON object per line; strings stay strings ("007" is not 7)
            frame = pd.read_json(path, lines=True, dtype=False)
    except (ValueError, OSError) as err:
        kind = "Parquet" if path.suffix.lower() == ".parquet" else "JSON Lines (one object per line)"
        reason = " ".join(str(err).split())[:200]
        raise DataError(f"Could not read {path} as {kind} ({reason}).") from None
    if frame.empty:
        raise DataError(f"{path} is empty: it needs rows of at least two classes.")
    return frame


def splits_frame(dsd, text_column: str, label_column: str, text_pair_column: str | None = None,
                 where: str = "the data set") -> tuple[pd.DataFrame, tuple[str, ...] | None]:
    """A `datasets.DatasetDict` with its own splits (from the hub or `save_to_disk`) as one frame with a `split`
    column, and its class names where a `ClassLabel` gives them. A split without labels (GLUE's test: every label
    -1) is left out with a note; the validation split then tests, as in published dev-set results, and
    `lib.data.given_split` carves a validation split out of train."""
    first = next(iter(dsd.values()))
    missing = [c for c in (text_column, label_column, text_pair_column) if c and c not in first.column_names]
    if missing:
        raise DataError(f"{where} has no column {missing}; its columns are {first.column_names}. Name yours with "
                        "text_column= / label_column= (--text-column, --label-column).")
    unknown = sorted(set(dsd) - set(SPLIT_NAMES))
    if unknown:
        raise DataError(f"{where} has splits {unknown}; name them train, validation (or dev) and test.")
    feature = first.features[label_column]
    names = tuple(feature.names) if hasattr(feature, "names") else None
    parts = []
    for split, ds in dsd.items():
        labels = ds[label_column]
        if names is not None and all(v is None or v < 0 for v in labels):
            print(f"note: the {split!r} split of {where} has no labels (as GLUE's test); it is left out.")
            continue
        part = pd.DataFrame({"text": ds[text_column], "label_raw": labels, "split": SPLIT_NAMES[split]})
        if text_pair_column:
            part.insert(1, "text_pair", ds[text_pair_column])
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    if names is not None:  # ClassLabel ids index the names
        frame = frame[frame["label_raw"] >= 0]
    if "test" not in set(frame["split"]) and "validation" in set(frame["split"]):
        print(f"note: {where} has no labelled test split: its validation split is the test set (as published "
              "dev-set results are), and a validation split is carved out of train.")
        frame["split"] = frame["split"].replace({"validation": "test"})
    return frame, names


def _columns(frame: pd.DataFrame, source: DataSource, path: str) -> None:
    named = {"text_column": source.text_column, "label_column": source.label_column,
             "text_pair_column": source.text_pair_column, "group_column": source.group_column,
             "split_column": source.split_column}
    missing = {k: v for k, v in named.items() if v is not None and v not in frame.columns}
    if missing:
        flags = ", ".join(f"{k}= (--{k.replace('_', '-')})" for k in missing)
        raise DataError(f"{path} has no column {sorted(missing.values())}; its columns are {list(frame.columns)}. "
                        f"Name yours with {flags}.")


def _label_codes(labels: pd.Series, names: tuple[str, ...] | None) -> tuple[np.ndarray, list[str]]:
    """Class indices and names. Integer labels are classes of their own (1..5 are five classes, 0/2 two);
    with `names`, integers index them (0 → names[0]) and strings must be among them."""
    if labels.isna().any():
        raise DataError(f"{int(labels.isna().sum())} rows have no label; drop or label them first.")
    numeric = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    if numeric and not np.all(np.mod(labels.to_numpy(dtype=float), 1) == 0):
        raise DataError(f"Labels must be classes, found non-whole numbers {sorted(labels.unique().tolist())[:5]}; "
                        "bin a score into classes first.")
    if names is not None:
        names = list(names)
        if numeric:
            values = labels.astype(int)
            bad = sorted(set(values[(values < 0) | (values >= len(names))].tolist()))
            if bad:
                raise DataError(f"Labels {bad[:10]} are outside the given names {names} (0..{len(names) - 1}).")
            return _every_name_used(values.to_numpy(), names), names
        text = labels.astype(str).str.strip()
        bad = sorted(set(text) - set(names))
        if bad:
            raise DataError(f"Labels {bad[:10]} are not among the given names {names}.")
        return _every_name_used(text.map({n: i for i, n in enumerate(names)}).to_numpy(), names), names
    if numeric:
        classes = sorted(set(labels.astype(int).tolist()))
        return labels.astype(int).map({c: i for i, c in enumerate(classes)}).to_numpy(), [str(c) for c in classes]
    text = labels.astype(str).str.strip()
    classes = sorted(set(text))
    return text.map({c: i for i, c in enumerate(classes)}).to_numpy(), classes


def _every_name_used(codes: np.ndarray, names: list[str]) -> np.ndarray:
    """A given class name without a single row would train a classifier with an output nothing teaches."""
    present = set(codes.tolist())
    empty = [n for i, n in enumerate(names) if i not in present]
    if empty:
        raise DataError(f"Class names {empty} have no rows in the file; give one name per class present "
                        f"({len(names) - len(empty)} here).")
    return codes


def _frame(table: pd.DataFrame, source: DataSource) -> pd.DataFrame:
    out = pd.DataFrame({"text": table[source.text_column].tolist(), "label_raw": table[source.label_column].tolist()})
    for key, column in (("text_pair", source.text_pair_column), ("group", source.group_column),
                        ("split", source.split_column)):
        if column:
            out[key] = table[column].tolist()
    return out


def read_source(source: DataSource) -> tuple[pd.DataFrame, list[str]]:
    """Columns `text`, `label` (class index) and where given `text_pair`, `group`, `split`; and the class names."""
    if is_saved_dataset(source.path):
        import datasets

        saved = datasets.load_from_disk(str(located(source.path)))
        frame, names = splits_frame(saved, source.text_column, source.label_column, source.text_pair_column,
                                    where=source.path)
        return coded(frame, source.label_names or names, source.split_column or "split")
    parts = []
    for path, split in ((source.path, None), (source.validation_path, "validation"), (source.test_path, "test")):
        if path is None:
            continue
        table = read_table(located(path), source.sep, source.encoding)
        _columns(table, source, path)
        part = _frame(table, source)
        if split:
            part["split"] = split
        elif source.validation_path or source.test_path:
            part["split"] = "train"
        parts.append(part)
    return coded(pd.concat(parts, ignore_index=True), source.label_names, source.split_column)


def coded(frame: pd.DataFrame, label_names: tuple[str, ...] | None, split_column: str | None):
    """`label_raw` → class indices and names; split names normalised (dev → validation)."""
    codes, names = _label_codes(pd.Series(frame.pop("label_raw").tolist()), label_names)
    frame.insert(1, "label", codes)
    if "split" in frame:
        raw = frame["split"].astype(str).str.strip().str.lower()
        unknown = sorted(set(raw) - set(SPLIT_NAMES))
        if unknown:
            raise DataError(f"Split column {split_column!r} has values {unknown[:5]}; use train, validation "
                            "(or val, valid, dev) and test.")
        frame["split"] = raw.map(SPLIT_NAMES)
    return frame, names
