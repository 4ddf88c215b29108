"""A fine-tuned classifier you keep: write it as a `save_pretrained` folder with a model card, and classify with it.

`save_classifier` copies a run's weights (the folder `lib.store` kept) into a
folder of your choice, beside `workbook.json` (class names, the length and
truncation it was trained with, where it came from) and a model card
(`README.md`: data fingerprint, recipe, test accuracy ± std over seeds, the
TF-IDF floor). The folder loads anywhere `transformers` does:

    pipeline("text-classification", model="models/my-classifier")

`classify(folder, texts)` and the command cut long texts the way training did
(head, tail or head+tail) and return each text's label and class probabilities:

    python -m lib.predict models/my-classifier "great battery life" "it broke in a week"
    python -m lib.predict models/my-classifier --data new.csv --text-column review --out labelled.csv

A folder that is missing, or holds an encoder without a trained classifier
head, and a file without the text column are one line and exit status 2.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

from lib.atomic import atomic_path
from lib.classify import encoder
from lib.cli import Parser
from lib.models import WRITER_FILE, quiet_transformers
from lib.paths import located
from lib.source import DataError, read_table

META = "workbook.json"
"""What a saved classifier needs besides its weights: class names, max_length, truncation, its provenance."""


class PredictError(ValueError):
    """A folder that is not a trained classifier, or input it cannot classify."""


# ------------------------------------------------------------------ writing
def check_target(folder: str | Path) -> Path:
    """Where a classifier may be saved: a new folder, or one this module saved before (which it replaces).
    Anything else (`.`, a data folder, a file) is refused: saving replaces the folder whole."""
    path = Path(folder)
    if path.exists() and not (path.is_dir() and (path / META).is_file()):
        raise PredictError(f"{folder} exists and is not a classifier saved by the workbook (no {META}); saving "
                           "replaces the folder whole, so name a new one, e.g. models/my-classifier.")
    return path


def save_classifier(checkpoint: Path, folder: str | Path, meta: dict, card: str) -> Path:
    """Copy a kept run's weights and tokenizer into `folder` (atomically: a half-copied folder never appears)
    with `workbook.json` and the model card. `meta` needs label_names, max_length and truncation."""
    folder = check_target(folder)
    with atomic_path(folder) as tmp:
        shutil.copytree(located(checkpoint), tmp, ignore=shutil.ignore_patterns(WRITER_FILE, "*.lock"))
        (tmp / META).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        (tmp / "README.md").write_text(card)
    return folder


# ------------------------------------------------------------------ reading
def check_classifier(folder: str | Path) -> Path:
    """A folder with a trained sequence-classification head (not a bare encoder, whose head would be random)."""
    path = located(str(folder))
    if not path.is_dir():
        raise PredictError(f"No model folder {folder}; save one with python -m lib.finetune ... --save-model DIR.")
    config = path / "config.json"
    if not config.is_file():
        raise PredictError(f"{folder} has no config.json: not a folder written by save_pretrained.")
    architectures = json.loads(config.read_text()).get("architectures") or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise PredictError(f"{folder} holds {architectures or 'no architecture'}, not a trained classifier: its "
                           "head would be random. Fine-tune it first (python -m lib.finetune ... --save-model DIR).")
    return path


def load_classifier(folder: str | Path):
    """(tokenizer, model in eval mode, meta) of a saved classifier; meta falls back to the config for a folder
    written elsewhere (its id2label, head truncation at the tokenizer's length)."""
    path = check_classifier(folder)
    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    meta = json.loads((path / META).read_text()) if (path / META).exists() else {}
    labels = model.config.id2label
    meta.setdefault("label_names", [labels[i] for i in range(len(labels))])
    meta.setdefault("max_length", min(512, tokenizer.model_max_length))
    meta.setdefault("truncation", "head")
    return tokenizer, model, meta


@torch.no_grad()
def classify(folder: str | Path, texts: list[str], batch_size: int = 32) -> pd.DataFrame:
    """Each text's `predicted` class, its `probability`, and every class's probability (columns `p(<class>)`)."""
    texts = [str(t) for t in texts]
    if not texts:
        raise PredictError("No text to classify: give one or more texts, or --data FILE --text-column NAME.")
    tokenizer, model, meta = load_classifier(folder)
    encode = encoder(tokenizer, meta["max_length"], meta["truncation"])
    collate = DataCollatorWithPadding(tokenizer)
    probs = []
    for start in range(0, len(texts), batch_size):
        enc = encode({"text": texts[start:start + batch_size]})
        batch = collate([{k: enc[k][i] for k in enc} for i in range(len(enc["input_ids"]))])
        probs.append(torch.softmax(model(**batch).logits.float(), -1))
    p = torch.cat(probs).numpy()
    names = meta["label_names"]
    out = pd.DataFrame({"text": texts, "predicted": [names[i] for i in p.argmax(-1)],
                        "probability": p.max(-1).round(4)})
    return out.assign(**{f"p({n})": p[:, i].round(4) for i, n in enumerate(names)})


# ------------------------------------------------------------- the command
def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m lib.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a folder written by python -m lib.finetune --save-model")
    parser.add_argument("texts", nargs="*", help="texts to classify (or --data)")
    parser.add_argument("--data", help="a CSV/TSV file of texts to classify")
    parser.add_argument("--text-column", default="text", help="its column with the text (default: text)")
    parser.add_argument("--sep", help="the field separator (default: detected)")
    parser.add_argument("--encoding", help="the file's encoding (default: UTF-8, else latin-1)")
    parser.add_argument("--out", help="write the file with predicted and probability columns added (CSV)")
    args = parser.parse_args(argv)
    try:
        if args.data and args.texts:
            raise PredictError("Give texts or --data FILE, not both.")
        check_classifier(args.model)
        table = None
        if args.data:
            table = read_table(located(args.data), args.sep, args.encoding)
            if args.text_column not in table.columns:
                raise PredictError(f"{args.data} has no column {args.text_column!r}; its columns are "
                                   f"{list(table.columns)}. Name yours with --text-column.")
        texts = table[args.text_column].tolist() if table is not None else args.texts
        result = classify(args.model, texts)
    except (PredictError, DataError) as err:
        parser.error(str(err))
    if args.out:
        labelled = table.assign(**result.drop(columns="text")) if table is not None else result
        with atomic_path(Path(args.out)) as tmp:
            labelled.to_csv(tmp, index=False)
        print(f"wrote {args.out}: {len(result):,} rows, predicted and probability columns added")
    else:
        print(result.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
