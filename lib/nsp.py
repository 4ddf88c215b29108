"""Next-sentence-prediction pairs, built the way BERT's `create_pretraining_data.py` builds them.

Per document, consecutive sentences are packed into a chunk of about
`max_seq_len` tokens (sometimes shorter: `short_seq_prob`). The chunk is cut
in two at a random sentence boundary: segment A is the first part; half the
time B is the rest (IsNext, label 0), half the time a run of sentences from a
random *other* document (NotNext, label 1), and then the unused rest of the
chunk starts the next chunk. The pair is packed as `[CLS] A [SEP] B [SEP]`,
trimming the longer segment at a random end.
"""

from __future__ import annotations

import random

from transformers import PreTrainedTokenizerBase

from lib.memo import by_content, digest, tokenizer_digest

IS_NEXT, NOT_NEXT = 0, 1


def _target_length(rng: random.Random, max_tokens: int, short_seq_prob: float) -> int:
    """Tokens a chunk aims for: the full budget, or (with `short_seq_prob`) a random shorter one."""
    return rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens


def _chunk_end(doc: list[list[int]], start: int, target: int) -> int:
    """End (exclusive) of the chunk from sentence `start`: it reaches `target` tokens or the document's end."""
    length = 0
    for end in range(start, len(doc)):
        length += len(doc[end])
        if length >= target:
            return end + 1
    return len(doc)


def _other_segment(
    docs: list[list[list[int]]], d: int, budget: int, rng: random.Random
) -> tuple[int, list[int], list[int]]:
    """NotNext's B: sentences from a random sentence on, in a random other document, until `budget` tokens."""
    k = rng.randrange(len(docs) - 1)
    other = k + (k >= d)  # any document but d, drawn directly (no list of the others)
    return other, *_run_from(docs[other], budget, rng)


def _run_from(doc: list[list[int]], budget: int, rng: random.Random) -> tuple[list[int], list[int]]:
    """Consecutive sentences of `doc` from a random one on, until `budget` tokens: their indices and tokens."""
    sentences, tokens = [], []
    for s in range(rng.randrange(len(doc)), len(doc)):
        sentences.append(s)
        tokens += doc[s]
        if len(tokens) >= budget:
            break
    return sentences, tokens


def _truncate_pair(a: list[int], b: list[int], max_tokens: int, rng: random.Random) -> None:
    """Trim the longer segment, from the front or the back at random (as BERT does)."""
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        del longer[0 if rng.random() < 0.5 else -1]


def _pair(docs, d: int, start: int, end: int, target: int, rng: random.Random) -> tuple[dict, int]:
    """The pair made from chunk [start, end) of document d, and where the next chunk starts."""
    doc = docs[d]
    n = end - start
    a_end = rng.randint(1, n - 1) if n >= 2 else 1
    a_sents = list(range(start, start + a_end))
    a = [t for s in a_sents for t in doc[s]]
    if n == 1 or rng.random() < 0.5:
        b_doc, b_sents, b = _other_segment(docs, d, target - len(a), rng)
        label, next_start = NOT_NEXT, start + a_end  # the unused rest of the chunk is not wasted
    else:
        b_sents = list(range(start + a_end, end))
        b_doc, b, label, next_start = d, [t for s in b_sents for t in doc[s]], IS_NEXT, end
    pair = {
        "a": a,
        "b": b,
        "label": label,
        "a_doc": d,
        "a_span": [a_sents[0], a_sents[-1]],
        "b_doc": b_doc,
        "b_span": [b_sents[0], b_sents[-1]],
    }
    return pair, next_start


def _pack(pair: dict, max_tokens: int, cls: int, sep: int, rng: random.Random) -> dict | None:
    """`[CLS] A [SEP] B [SEP]` with token types, after trimming; None if a segment ends up empty."""
    a, b = list(pair["a"]), list(pair["b"])
    _truncate_pair(a, b, max_tokens, rng)
    if not (a and b):
        return None
    return {
        "input_ids": [cls] + a + [sep] + b + [sep],
        "token_type_ids": [0] * (len(a) + 2) + [1] * (len(b) + 1),
        "next_sentence_label": pair["label"],
    } | {k: pair[k] for k in ("a_doc", "a_span", "b_doc", "b_span")}


def _documents_key(docs: list[list[str]], tokenizer: PreTrainedTokenizerBase, max_len: int) -> str:
    return digest(docs, tokenizer_digest(tokenizer), max_len)


@by_content(_documents_key)
def tokenize_documents(
    docs: list[list[str]], tokenizer: PreTrainedTokenizerBase, max_len: int
) -> list[list[list[int]]]:
    """Token ids of every sentence, per document, in one batched tokenizer call (a call per sentence
    costs ~10x more). A "sentence" longer than a whole pair (a missed split) is cut to `max_len`:
    it could never be packed anyway. Remembered per process by content (`lib.memo`): every pretraining run of
    notebook 01 tokenises the same corpus (~4 s). Read only: callers share the lists."""
    flat = [s for doc in docs for s in doc]
    ids = tokenizer(flat, add_special_tokens=False, truncation=True, max_length=max_len)["input_ids"] if flat else []
    out, start = [], 0
    for doc in docs:
        out.append(ids[start : start + len(doc)])
        start += len(doc)
    return out


def nsp_examples(
    documents: list[list[str]],
    tokenizer: PreTrainedTokenizerBase,
    max_seq_len: int = 128,
    short_seq_prob: float = 0.1,
    seed: int = 0,
) -> list[dict]:
    """Sentence-pair examples with `next_sentence_label` and provenance.

    Each example also records where its segments came from (`a_doc`, `a_span`,
    `b_doc`, `b_span`: document index and sentence range) so tests can check
    that an IsNext pair is consecutive inside one document.
    """
    if max_seq_len < 8:
        raise ValueError(f"max_seq_len must be ≥ 8, got {max_seq_len}.")
    docs = [d for d in documents if d]
    if len(docs) < 2:
        raise ValueError("NSP needs at least two non-empty documents (NotNext pairs come from another document).")
    tokenized = tokenize_documents(docs, tokenizer, max_seq_len)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    return pairs_from_tokens(tokenized, cls, sep, max_seq_len, short_seq_prob, seed)


def pairs_from_tokens(
    tokenized: list[list[list[int]]], cls: int, sep: int, max_seq_len: int, short_seq_prob: float, seed: int
) -> list[dict]:
    """The pairs of `nsp_examples` from documents already tokenised (sentences of token ids)."""
    rng = random.Random(seed)
    max_tokens = max_seq_len - 3  # [CLS] A [SEP] B [SEP]
    out = []
    for d, doc in enumerate(tokenized):
        start, target = 0, _target_length(rng, max_tokens, short_seq_prob)
        while start < len(doc):
            pair, start_next = _pair(tokenized, d, start, _chunk_end(doc, start, target), target, rng)
            packed = _pack(pair, max_tokens, cls, sep, rng)
            if packed is not None:
                out.append(packed)
            start, target = start_next, _target_length(rng, max_tokens, short_seq_prob)
    return out
