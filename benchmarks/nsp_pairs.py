"""Building NSP pairs for the whole news corpus: the NotNext draw before and after the fix.

    python -m benchmarks.nsp_pairs          (≈ 1 min; appends a section to results/benchmarks.md)

The first `nsp_examples` drew a NotNext document with `rng.choice([k for k in range(len(docs)) if k != d])`,
a list of every other document rebuilt for each pair: O(documents) per pair, O(documents²) per corpus.
`lib.nsp._other_segment` now draws the index directly (`randrange(n − 1)`, shifted past d). This script times
pair building (tokenisation excluded, measured separately) with each draw on the same tokenised corpus.
Both draws pick a uniformly random other document; they consume the generator differently, so the pairs differ.
"""

from __future__ import annotations

import datetime
import os
import random
import time

import pandas as pd

from benchmarks.hardware import append_section
from lib import nsp
from lib.data import load_news_corpus
from lib.device import cpu_model
from lib.models import load_tokenizer


def _quadratic_other_segment(docs, d: int, budget: int, rng: random.Random):
    """The old draw: a list of all other documents for every NotNext pair."""
    other = rng.choice([k for k in range(len(docs)) if k != d])
    return other, *nsp._run_from(docs[other], budget, rng)


def _pairs_seconds(tokenized, cls: int, sep: int, draw) -> tuple[float, int]:
    """Seconds to build the pairs from the tokenised documents with `draw` as the NotNext draw."""
    original = nsp._other_segment
    nsp._other_segment = draw
    try:
        start = time.perf_counter()
        pairs = nsp.pairs_from_tokens(tokenized, cls, sep, 128, 0.1, seed=0)
        return time.perf_counter() - start, len(pairs)
    finally:
        nsp._other_segment = original


def run() -> pd.DataFrame:
    docs = [d for d in load_news_corpus()["train"]["sentences"] if d]
    tokenizer = load_tokenizer("bert-tiny")
    start = time.perf_counter()
    tokenized = nsp.tokenize_documents(docs, tokenizer, 128)
    tokenize_s = time.perf_counter() - start
    start = time.perf_counter()
    one_by_one = [[tokenizer(s, add_special_tokens=False, truncation=True, max_length=128)["input_ids"] for s in d]
                  for d in docs]  # how nsp_examples tokenised before
    one_by_one_s = time.perf_counter() - start
    assert one_by_one == tokenized
    rows = [{"step": "tokenise, one call per sentence (before)", "documents": len(docs), "pairs": "",
             "seconds": round(one_by_one_s, 2)},
            {"step": "tokenise, one batched call (now)", "documents": len(docs), "pairs": "",
             "seconds": round(tokenize_s, 2)}]
    for name, draw in (("pairs, NotNext from a list of all other documents (before)", _quadratic_other_segment),
                       ("pairs, NotNext index drawn directly (now)", nsp._other_segment)):
        seconds, n = _pairs_seconds(tokenized, tokenizer.cls_token_id, tokenizer.sep_token_id, draw)
        rows.append({"step": name, "documents": len(docs), "pairs": n, "seconds": round(seconds, 2)})
    return pd.DataFrame(rows)


def main() -> None:
    table = run()
    machine = f"{cpu_model()} ({os.cpu_count()} logical CPUs)"
    text = f"""
## NSP pair building for the whole training corpus

`python -m benchmarks.nsp_pairs`, measured {datetime.date.today().isoformat()} on {machine}:
the news corpus's training documents, 128-token pairs, seed 0.

{table.to_markdown(index=False)}
"""
    append_section(text)


if __name__ == "__main__":
    main()
