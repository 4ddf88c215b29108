"""Fine-tuning, in one place: the run's spec, the workbook's baseline recipe, what a run reports, and the command.

* `FinetuneSpec` — what to fine-tune on what (data, model, subsample,
  `TrainConfig`). Handed to `lib.store.run`, it *is* the run's identity: the
  same spec returns the stored run instead of training again. Impossible specs
  fail when they are built, before anything trains.
* `baseline_spec(profile)` — the recipe every notebook measures against
  (MiniLM-L6, `TrainConfig` defaults, the profile's budget), and `WORKING_LR`,
  the rate the ablations hold fixed.
* `seed_table`, `summary`, `mistakes` — what notebooks 02 and 09 and the
  command print about a set of runs (per seed, over seeds against the TF-IDF
  floor, the most confident errors).
* `python -m lib.finetune --data my.csv ...` — the baseline at `WORKING_LR` on
  your labelled file; any `TrainConfig` field is an option (`--lr 3e-5`,
  `--truncation head+tail`, `--max-length 256` …). Every seed is stored and
  replayed like any run (`results/runs/<experiment>/`), and the TF-IDF floor is
  computed on the same split. Bad arguments or data fail with one line and exit
  status 2 before anything trains.

    python -m lib.finetune --data sms.csv --text-column text --label-column spam --label-names ham,spam
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import DatasetDict
from sklearn.metrics import classification_report

from lib import cli, floors, parallel, plots, stats, store
from lib.classify import METRICS, train_classifier
from lib.data import DATA_VERSION, LOADERS, data_label, is_file_name, label_names, load_data
from lib.models import INITS, check_model, fingerprint, load_model, position_limit, save_checkpoint
from lib.predict import check_target, save_classifier
from lib.profiles import FinetuneBudget, Profile
from lib.source import DataSource
from lib.stats import lr_label
from lib.store import Record
from lib.train_config import ConfigError, TrainConfig, check_warmup, num_update_steps

WORKING_LR = 1e-4
"""The rate the ablations hold fixed. Notebook 02 measured that BERT-base's 2e-5
under-trains MiniLM (22.7M parameters) on a short budget; 1e-4 is from the
compact-BERT grid (Turc et al.). Notebook 05 varies the rate itself."""


# ------------------------------------------------------------------ the spec
@dataclass
class FinetuneSpec:
    """What to fine-tune on what; defaults are the baseline."""

    data: str | DataSource = "movie_snippets"  # a shipped name, a hub name, or your file (a CSV path or a DataSource)
    data_version: int = DATA_VERSION
    model: str = "minilm-l6"
    vocab: str = "news-8k"  # only used by from-scratch models
    init: str = "pretrained"  # "random": the same architecture with fresh weights (what does pretraining buy?)
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    max_test_examples: int | None = None  # a fixed stratified subset (smoke, quick); None: the whole split
    train: TrainConfig = field(default_factory=TrainConfig)

    kind = "finetune"  # checkpoints/finetune/<run_id>/ when a run keeps its weights (a distillation teacher)
    keeps_checkpoint = False

    def __post_init__(self) -> None:
        if not isinstance(self.data, (str, DataSource)):
            raise ConfigError(f"data is a shipped name, a file or a DataSource, got {self.data!r}.")
        if isinstance(self.data, str) and is_file_name(self.data):
            self.data = DataSource(self.data)  # default columns text, label
        check_model(self.model, self.vocab)
        if self.init not in INITS:
            raise ConfigError(f"init={self.init!r}; choose one of {INITS}.")
        if self.train.metric not in METRICS:
            raise ConfigError(f"metric={self.train.metric!r} is not a fine-tuning metric; choose one of {METRICS}.")
        limit = position_limit(self.model)
        if limit is not None and self.train.max_length > limit:
            raise ConfigError(
                f"max_length={self.train.max_length}, but {self.model} takes at most {limit} positions; "
                f"use max_length ≤ {limit} (and truncation='head+tail' to keep both ends of long texts)."
            )
        for name in ("max_train_examples", "max_eval_examples", "max_test_examples"):
            n = getattr(self, name)
            if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
                raise ConfigError(f"{name} must be a whole number ≥ 1 (or None: all), got {n!r}.")
        if self.max_train_examples is not None:  # the run is at most this long: warmup must fit in it
            batches = math.ceil(self.max_train_examples / self.train.batch_size)
            check_warmup(self.train, num_update_steps(batches, self.train))

    def with_overrides(self, **overrides) -> FinetuneSpec:
        """A copy with spec fields or `TrainConfig` fields replaced (ablations); one dict, so a later value of a
        name can never collide with an earlier one."""
        spec_keys = {k: v for k, v in overrides.items() if k in self.__dataclass_fields__ and k != "train"}
        train_keys = {k: v for k, v in overrides.items() if k not in spec_keys}
        unknown = set(train_keys) - set(TrainConfig.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"Unknown override(s) {sorted(unknown)}: not a FinetuneSpec or TrainConfig field.")
        return replace(self, **spec_keys, train=replace(self.train, **train_keys))

    def seeds(self, seeds: list[int]) -> list[FinetuneSpec]:
        """The same run over several seeds."""
        return [self.with_overrides(seed=s) for s in seeds]

    def identity(self) -> dict:
        """The spec's fields; for your own file, its description and its content fingerprint; for a model
        folder, what wrote it (`lib.models.fingerprint`), so a re-trained checkpoint makes a new run."""
        out = asdict(self)
        if isinstance(self.data, DataSource):
            out["data"] = self.data.identity()
        if (model := fingerprint(self.model)) is not None:
            out["model_fingerprint"] = model
        return out

    def dataset(self) -> DatasetDict:
        """The spec's data set with its subsample (train / validation / test)."""
        return load_data(
            self.data,
            max_train_examples=self.max_train_examples,
            max_eval_examples=self.max_eval_examples,
            max_test_examples=self.max_test_examples,
        )

    def compute(self, profile: Profile | None = None, stop_on_divergence: bool = False, dsd: DatasetDict | None = None,
                **train_kwargs) -> Record:
        """Fine-tune now (no store; a fine-tuning run reads nothing of the profile but its spec). `dsd` replaces
        the spec's data set and `train_kwargs` go to `lib.classify.train_classifier` (a distillation student's
        transfer sentences, the teacher's logits as a training column and a model wrapper)."""
        dsd = dsd if dsd is not None else self.dataset()
        names = label_names(dsd)
        tokenizer, model = load_model(
            self.model, "classification", label_names=names, vocab=self.vocab, seed=self.train.seed, init=self.init
        )
        result = train_classifier(model, tokenizer, dsd, self.train, stop_on_divergence=stop_on_divergence,
                                  **train_kwargs)
        metrics = result.metrics | {"confusion": result.confusion.tolist(), "label_names": names}
        return Record(metrics, result.history, result.predictions, lambda path: save_checkpoint(model, tokenizer, path))


def is_own_data(data: str | DataSource) -> bool:
    """A user's file or a hub data set, as opposed to a data set the workbook ships and experiments on."""
    return isinstance(data, DataSource) or data not in LOADERS


def budget(profile: Profile, data: str | DataSource) -> FinetuneBudget:
    """How much of `data` a run uses: the profile's experiment budget for a shipped data set, every row for
    yours (`Profile.own_data`: a user's data is not a profile's toy; smoke, the tests', subsamples it)."""
    return profile.own_data if is_own_data(data) else profile.finetune


def budget_sizes(profile: Profile, data: str | DataSource) -> dict[str, int | None]:
    """`budget`'s subsample sizes as spec overrides: a grid moved onto your data takes every row too (its epochs
    and batch are the experiment's: `own_data` differs from `finetune` only in its sizes)."""
    b = budget(profile, data)
    return {"max_train_examples": b.max_train_examples, "max_eval_examples": b.max_eval_examples,
            "max_test_examples": b.max_test_examples}


def describe_budget(profile: Profile, spec: FinetuneSpec) -> str:
    """One line saying which budget ran, so a subsample is never a surprise."""
    sizes = {"train": spec.max_train_examples, "validation": spec.max_eval_examples, "test": spec.max_test_examples}
    cut = ", ".join(f"{k} ≤ {n:,}" for k, n in sizes.items() if n is not None)
    t = spec.train
    rows = f"a subsample ({cut})" if cut else "every row of each split"
    whose = "for your data" if is_own_data(spec.data) else "for the workbook's experiments"
    return (f"budget: {rows}, {t.epochs:g} epoch(s), batch {t.batch_size}, the best validation {t.metric} kept "
            f"(the {profile.name} profile's budget {whose}; --max-train-examples N subsamples, 'none' takes all)")


def header(spec: FinetuneSpec, dsd: DatasetDict, profile: Profile) -> str:
    """What a run on `dsd` is about to do: split sizes, classes, model, and which budget (`describe_budget`)."""
    sizes = ", ".join(f"{k} {len(v):,}" for k, v in dsd.items())
    return (f"{data_label(spec.data)}: {sizes}; classes {label_names(dsd)}; model {spec.model}\n"
            + describe_budget(profile, spec))


def baseline_spec(profile: Profile, data: str | DataSource = "movie_snippets", device: str = "auto") -> FinetuneSpec:
    """The baseline fine-tuning run of `profile` on `data`: MiniLM-L6, `TrainConfig` defaults
    (the recipe) except the budget (examples, epochs, batch; `budget`)."""
    b = budget(profile, data)
    train = TrainConfig(epochs=b.epochs, batch_size=b.batch_size, eval_batch_size=b.eval_batch_size, device=device,
                        progress=profile.progress)
    return FinetuneSpec(data=data, model="minilm-l6", train=train, **budget_sizes(profile, data))


# ------------------------------------------------------- what runs report
def recalls(run: store.Run) -> str:
    """Per-class recall from the run's confusion matrix: what accuracy hides on imbalanced data."""
    cm, names = run.confusion, run.metrics["label_names"]
    per = cm.diagonal() / np.maximum(1, cm.sum(1))
    return ", ".join(f"{n} {100 * r:.1f}%" for n, r in zip(names, per))


def seed_table(runs: list[store.Run]) -> pd.DataFrame:
    """One row per seed: test accuracy, macro-F1 (%), recall per class, where validation picked the weights."""
    return pd.DataFrame([{"seed": r.config["train"]["seed"], "accuracy (%)": round(100 * r.metrics["test_accuracy"], 1),
                          "macro-F1 (%)": round(100 * r.metrics["test_macro_f1"], 1), "recall per class": recalls(r),
                          "best step": r.metrics["best_step"], "steps": r.metrics["steps"]} for r in runs]
                        ).set_index("seed")


def summary(runs: list[store.Run], floor: dict, label: str) -> str:
    """Over seeds against the TF-IDF floor on the same split (Markdown bullets): accuracy and macro-F1 with their
    spread, the one-sample interval against the floor, and the failed runs (at or below *this* test set's
    majority class)."""
    frame = store.runs_frame(runs).assign(data=label)
    floor_frame = pd.DataFrame([{"data": label, "test_accuracy": floor["test_accuracy"]}])
    acc, f1 = stats.mean_std(frame, "data", ["test_accuracy", "test_macro_f1"]).iloc[0, :2]
    failed = int(stats.failed_runs(frame).sum())
    return "\n".join([
        f"* over {len(runs)} seed(s): accuracy {acc}%, macro-F1 {f1}% (every class counts the same); failed runs "
        f"(at or below the majority class, {100 * frame['test_majority'].iloc[0]:.1f}%): {failed}/{len(runs)}",
        f"* TF-IDF + logistic regression floor on the same split: accuracy {100 * floor['test_accuracy']:.1f}%, "
        f"macro-F1 {100 * floor['test_macro_f1']:.1f}%",
        stats.vs_floor(frame, floor_frame, ["data"]),
    ])


def summary_table(frame: pd.DataFrame, floor: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group of runs (e.g. data set × rate): test accuracy and macro-F1 as mean ± std over seeds, seconds per
    run, and the TF-IDF floor's accuracy on that data set (`floor`: `lib.floors.tfidf_table`)."""
    out = stats.mean_std(frame, by, ["test_accuracy", "test_macro_f1"])
    out["seconds per run"] = frame.groupby(by, sort=False)["train_seconds"].mean().round(0)
    floor_acc = floor.set_index("data")["test_accuracy"]
    out["TF-IDF floor accuracy"] = [round(100 * floor_acc[key[0] if isinstance(key, tuple) else key], 1)
                                    for key in out.index]
    return out


def best_rate(frame: pd.DataFrame, rate: str = "lr", metric: str = "test_accuracy") -> dict[str, float]:
    """Per data set, the rate with the best mean `metric` over seeds (`best_val_accuracy` to choose a rate; the
    test accuracy only to pick which runs to show)."""
    means = frame.groupby(["data", rate])[metric].mean()
    return {data: key[1] for data, key in means.groupby("data").idxmax().items()}


def per_class(run: store.Run) -> pd.DataFrame:
    """Precision, recall and F1 per class on the test set (what accuracy hides when classes differ in size)."""
    p = run.predictions
    report = classification_report(p["label"].tolist(), p["pred"].tolist(), zero_division=0, output_dict=True)
    return pd.DataFrame(report).T.round(3)


def mistakes(run: store.Run, n: int = 8) -> tuple[int, pd.DataFrame]:
    """How many test examples a run got wrong, and its `n` most confident mistakes (label noise shows up here)."""
    p = run.predictions
    wrong = p[p["label"] != p["pred"]].sort_values("confidence", ascending=False, kind="stable")
    return len(wrong), wrong.head(n).reset_index(drop=True)


# ---------------------------------------------------------- a model to keep
def save_model(experiment: str, specs: list[FinetuneSpec], runs: list[store.Run], floor: dict, dsd: DatasetDict,
               folder: str | Path, profile: Profile) -> tuple[Path, store.Run]:
    """Keep one seed's classifier in `folder`: the seed with the best validation score (validation chooses, so the
    test score of the kept model is not selected on), with its class names, its cut, and a model card.

    Runs keep no weights by default; the store retrains the chosen seed for its weights (one more run, the same
    numbers on the same machine; it says so if the retrained record differs)."""
    metric = specs[0].train.metric
    lower = metric.endswith("loss")
    score = [r.metrics[f"best_val_{metric}"] for r in runs]
    best = min(range(len(runs)), key=lambda i: (score[i] if lower else -score[i], i))
    kept = store.run(experiment, specs[best], profile, keep_checkpoint=True)
    spec, t = specs[best], specs[best].train
    sizes, identity = {k: len(v) for k, v in dsd.items()}, spec.identity()
    meta = {"label_names": kept.metrics["label_names"], "max_length": t.max_length, "truncation": t.truncation,
            "run_id": kept.run_id, "experiment": experiment, "seed": t.seed, "model": spec.model,
            "data": identity["data"], "test_accuracy": kept.metrics["test_accuracy"]}
    acc = np.array([r.metrics["test_accuracy"] for r in runs]) * 100
    f1 = np.array([r.metrics["test_macro_f1"] for r in runs]) * 100
    spread = lambda x: f"{x.mean():.1f} ± {x.std(ddof=1):.1f}" if len(x) > 1 else f"{x[0]:.1f} (one seed)"  # noqa: E731
    own = isinstance(spec.data, DataSource)
    data = spec.data.path if own else spec.data
    content = f"sha256 {', '.join(identity['data']['fingerprint'])}…" if own else f"data version {spec.data_version}"
    chosen = f"{score[best]:.3f}" if lower else f"{100 * score[best]:.1f}%"
    card = "\n".join([
        f"# {data_label(spec.data)}: a text classifier fine-tuned from {spec.model}",
        "",
        f"Made with the BERT workbook (`python -m lib.finetune`, run `{kept.run_id}` in `results/runs/{experiment}/`)."
        f" Classes: {', '.join(meta['label_names'])}.",
        "",
        "| | |",
        "|---|---|",
        f"| data | `{data}` ({content}); train {sizes['train']:,} / validation "
        f"{sizes['validation']:,} / test {sizes['test']:,} |",
        f"| recipe | {t.optimizer} lr {lr_label(t.lr)}, weight decay {t.weight_decay:g}, warmup "
        f"{t.warmup_ratio:g} of the run, {t.epochs:g} epoch(s), batch {t.batch_size}, max_length {t.max_length} "
        f"({t.truncation}), best validation {metric} kept |",
        f"| this model | seed {t.seed}: the best validation {metric} of {len(runs)} seed(s) "
        f"({chosen}); test accuracy {100 * kept.metrics['test_accuracy']:.1f}% |",
        f"| over the {len(runs)} seed(s) | test accuracy {spread(acc)}%, macro-F1 {spread(f1)}% (mean ± std) |",
        f"| TF-IDF + logistic regression floor | test accuracy {100 * floor['test_accuracy']:.1f}%, macro-F1 "
        f"{100 * floor['test_macro_f1']:.1f}% on the same split |",
        "",
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        f'classifier = pipeline("text-classification", model="{Path(folder).as_posix()}")',
        'classifier("a text to label")',
        "```",
        "",
        f'or `python -m lib.predict {Path(folder).as_posix()} "a text to label"`, which also cuts texts longer '
        f"than {t.max_length} tokens the way training did ({t.truncation}).",
        "",
        "## Limits",
        "",
        f"The test score comes from {sizes['test']:,} examples of the same file; text from elsewhere may score lower.",
        "",
    ])
    return save_classifier(kept.checkpoint, folder, meta, card), kept


# ------------------------------------------------------------- the command
NOT_OPTIONS = ("seed", "progress", "bf16")  # --seeds covers the seed; progress and precision follow the machine
PROFILES_OWN = object()  # a size option not given: the profile's budget (given as 'none': every row)


def _kind(annotation: str) -> type:
    """The value type of a TrainConfig field from its annotation string ('float | None' → float)."""
    base = annotation.split("|")[0].strip()
    return {"float": float, "int": int, "bool": bool, "str": str}[base]


def _value(kind: type, optional: bool):
    def parse(text: str):
        if optional and text.lower() == "none":
            return None
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        return kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its error
    return parse


def build_parser() -> cli.Parser:
    parser = cli.Parser(prog="python -m lib.finetune", description=__doc__.split("\n\n")[0],
                    epilog="Training options (TrainConfig fields; 'none' for an optional one): "
                    + ", ".join(f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(TrainConfig)
                                if f.name not in NOT_OPTIONS))
    parser.add_data_options(required=True)
    parser.add_argument("--model", default="minilm-l6", help="a shipped name, a save_pretrained folder or a hub name")
    parser.add_profile()
    parser.add_argument("--seeds", type=cli.seeds, help="comma-separated seeds (default: the profile's)")
    parser.add_argument("--experiment", type=cli.experiment_name,
                        help="where runs are stored (default: finetune__<file name>)")
    parser.add_argument("--max-train-examples", type=_value(int, True), default=PROFILES_OWN,
                        help="subsample train (default: every row; the smoke profile's subsample in smoke)")
    parser.add_argument("--max-eval-examples", type=_value(int, True), default=PROFILES_OWN,
                        help="subsample validation (default: every row; the smoke profile's subsample in smoke)")
    parser.add_argument("--force", action="store_true", help="train again even where a run is stored")
    parser.add_argument("--save-model", metavar="DIR", help="keep the seed with the best validation score as a "
                        "save_pretrained folder with a model card (python -m lib.predict DIR 'text')")
    train = parser.add_argument_group("training (any TrainConfig field)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in NOT_OPTIONS:
            continue
        annotation = str(f.type)
        train.add_argument(f"--{f.name.replace('_', '-')}", dest=f"train_{f.name}", default=argparse.SUPPRESS,
                           type=_value(_kind(annotation), "None" in annotation),
                           help=f"default {f.default!r}" if f.default is not dataclasses.MISSING else None)
    return parser


def spec_from_args(parser: cli.Parser, args) -> tuple[FinetuneSpec, list[int]]:
    """The run the arguments describe, validated (data read, config checked) before anything trains.

    The baseline, then the working rate, then every option the user gave, merged in one dict: a user's
    value always wins (`--lr 3e-5` replaces the working rate)."""
    source = parser.source(args)
    sizes = {k: getattr(args, k) for k in ("max_train_examples", "max_eval_examples")
             if getattr(args, k) is not PROFILES_OWN}  # given: a number, or None for every row
    overrides = {"data": source, "model": args.model, "lr": WORKING_LR} | sizes | {
        k[len("train_"):]: v for k, v in vars(args).items() if k.startswith("train_")}  # given only: 'none' is None
    try:
        if args.save_model:
            check_target(args.save_model)
        run_seeds = args.seeds or args.profile.seeds
        spec = baseline_spec(args.profile, source).with_overrides(**overrides)
        spec.dataset()  # reads and splits the file: bad data fails here
    except ValueError as err:
        parser.error(str(err))
    return spec, run_seeds


def report(runs: list[store.Run], floor: dict, experiment: str, label: str, profile: Profile) -> str:
    """What the terminal prints: per seed and over seeds, against the floor, and where the outputs are."""
    first = runs[0]
    title = f"{experiment}, seed {first.config['train']['seed']} (accuracy {100 * first.metrics['test_accuracy']:.1f}%)"
    path = plots.save(plots.plot_confusion(first.confusion, first.metrics["label_names"], title=title),
                      f"{experiment}_confusion", profile)
    return "\n".join([
        seed_table(runs).to_string(),
        summary(runs, floor, label).replace("**", ""),
        "",
        f"runs (config, history, metrics, predictions.csv.gz): {runs[0].path.parent}",
        f"table: {store.index_path(experiment, profile)}",
        f"confusion matrix: {path}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    spec, seeds = spec_from_args(parser, args)
    experiment = args.experiment or f"finetune__{data_label(spec.data)}"
    dsd = spec.dataset()
    main_process = parallel.is_main()  # under `accelerate launch`, every process trains; one reports
    if main_process:
        print(header(spec, dsd, args.profile), flush=True)
    specs = spec.seeds(seeds)
    runs = [store.run(experiment, s, args.profile, args.force) for s in specs]
    floor = floors.tfidf_logreg(dsd)
    if main_process:
        print(report(runs, floor, experiment, data_label(spec.data), args.profile))
    if args.save_model:
        folder, kept = save_model(experiment, specs, runs, floor, dsd, args.save_model, args.profile)
        if main_process:
            print(f"saved seed {kept.config['train']['seed']} (best validation {spec.train.metric}) to {folder}: "
                  f"python -m lib.predict {folder} \"some text\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
