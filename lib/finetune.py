"""Fine-tune on your own labelled file from a terminal: `python -m lib.finetune --data my.csv ...`.

The run is the profile's baseline (MiniLM-L6, AdamW, 10% warmup, the
profile's budget of examples and epochs) at the ablations' working rate 1e-4,
on your data; any `TrainConfig` field is an option (`--lr 3e-5`,
`--truncation head+tail`, `--max-length 256` …). Every seed is stored and
replayed like any run (`results/runs/<experiment>/`), and the TF-IDF floor is
computed on the same split. Bad arguments or data fail with one line and exit
status 2 before anything trains.

    python -m lib.finetune --data sms.csv --text-column text --label-column spam --label-names ham,spam
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np

from lib import ablations, baselines, parallel, plots, profiles, stats, store
from lib.cli import Parser
from lib.data import data_label
from lib.experiment import FinetuneSpec
from lib.trainer import TrainConfig

NOT_OPTIONS = ("seed", "progress", "bf16")  # --seeds covers the seed; progress and precision follow the machine


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


def build_parser() -> Parser:
    parser = Parser(prog="python -m lib.finetune", description=__doc__.split("\n\n")[0],
                    epilog="Training options (TrainConfig fields; 'none' for an optional one): "
                    + ", ".join(f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(TrainConfig)
                                if f.name not in NOT_OPTIONS))
    parser.add_data_options(required=True)
    parser.add_argument("--model", default="minilm-l6", help="a shipped name, a save_pretrained folder or a hub name")
    parser.add_profile()
    parser.add_argument("--seeds", help="comma-separated seeds (default: the profile's)")
    parser.add_argument("--experiment", help="where runs are stored (default: finetune__<file name>)")
    parser.add_argument("--max-train-examples", type=_value(int, True), help="subsample train (default: the profile's)")
    parser.add_argument("--max-eval-examples", type=_value(int, True), help="subsample validation (profile's)")
    parser.add_argument("--force", action="store_true", help="train again even where a run is stored")
    train = parser.add_argument_group("training (any TrainConfig field)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in NOT_OPTIONS:
            continue
        annotation = str(f.type)
        train.add_argument(f"--{f.name.replace('_', '-')}", dest=f"train_{f.name}", default=None,
                           type=_value(_kind(annotation), "None" in annotation),
                           help=f"default {f.default!r}" if f.default is not dataclasses.MISSING else None)
    return parser


def spec_from_args(parser: Parser, args) -> tuple[FinetuneSpec, list[int]]:
    """The run the arguments describe, validated (data read, config checked) before anything trains."""
    source = parser.source(args)
    overrides = {k[len("train_"):]: v for k, v in vars(args).items() if k.startswith("train_") and v is not None}
    budget = profiles.get(args.profile).finetune
    examples = {
        "max_train_examples": budget.max_train_examples if args.max_train_examples is None else args.max_train_examples,
        "max_eval_examples": budget.max_eval_examples if args.max_eval_examples is None else args.max_eval_examples,
    }
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else profiles.get(args.profile).seeds
        spec = ablations.baseline_spec(args.profile).with_overrides(
            data=source, model=args.model, lr=ablations.ABLATION_LR, **examples, **overrides)
        spec.dataset()  # reads and splits the file: bad data fails here
    except ValueError as err:
        parser.error(str(err))
    return spec, seeds


def recalls(run: store.Run) -> str:
    """Per-class recall from the run's confusion matrix: what accuracy hides on imbalanced data."""
    cm, names = run.confusion, run.metrics["label_names"]
    per = cm.diagonal() / np.maximum(1, cm.sum(1))
    return ", ".join(f"{n} {100 * r:.1f}%" for n, r in zip(names, per))


def report(runs: list[store.Run], floor: dict, experiment: str, profile: str) -> str:
    """What the terminal prints: per seed and over seeds, against the floor, and where the outputs are."""
    frame = store.runs_frame(runs).assign(seed=[r.config["train"]["seed"] for r in runs])
    lines = [f"{'seed':>4}  {'accuracy':>8}  {'macro-F1':>8}  recall per class"]
    lines += [f"{r.config['train']['seed']:>4}  {100 * r.metrics['test_accuracy']:>7.1f}%  "
              f"{100 * r.metrics['test_macro_f1']:>7.1f}%  {recalls(r)}" for r in runs]
    acc, f1 = stats.mean_std(frame.assign(all="all"), "all", ["test_accuracy", "test_macro_f1"]).iloc[0, :2]
    failed = int(stats.failed_runs(frame).sum())
    lines += [
        f"over {len(runs)} seed(s): accuracy {acc}%, macro-F1 {f1}%; failed runs (at or below the "
        f"majority class, {100 * frame['test_majority'].iloc[0]:.1f}%): {failed}/{len(runs)}",
        f"TF-IDF + logistic regression floor on the same split: accuracy {100 * floor['test_accuracy']:.1f}%, "
        f"macro-F1 {100 * floor['test_macro_f1']:.1f}%",
        "",
        f"runs (config, history, metrics, predictions.csv.gz): {runs[0].path.parent}",
        f"table: {runs[0].path.parent.parent.parent / (experiment + '.csv')}",
    ]
    first = runs[0]
    title = f"{experiment}, seed {first.config['train']['seed']} (accuracy {100 * first.metrics['test_accuracy']:.1f}%)"
    path = plots.save(plots.plot_confusion(first.confusion, first.metrics["label_names"], title=title),
                      f"{experiment}_confusion", profile)
    return "\n".join(lines + [f"confusion matrix: {path}"])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    spec, seeds = spec_from_args(parser, args)
    experiment = args.experiment or f"finetune__{data_label(spec.data)}"
    dsd = spec.dataset()
    main_process = parallel.is_main()  # under `accelerate launch`, every process trains; one reports
    if main_process:
        print(f"{data_label(spec.data)}: " + ", ".join(f"{k} {len(v):,}" for k, v in dsd.items())
              + f"; classes {dsd['train'].features['label'].names}; model {spec.model}", flush=True)
    runs = [store.run(experiment, s, args.profile, args.force) for s in spec.seeds(seeds)]
    if main_process:
        print(report(runs, baselines.tfidf_logreg(dsd), experiment, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())

