"""Knowledge distillation and int8 compression of a fine-tuned classifier (notebook 08).

* `DistillationLoss` (Hinton et al. 2015): the student matches the teacher's
  temperature-softened class distribution *and* the true labels,
  loss = α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(z_s, y).
  The T² keeps the soft term's gradients on the scale of the hard term's.
* `DistillSpec`: a student run. Its teacher is an ordinary fine-tuning run
  stored through `lib.store.run` with its weights kept under
  `checkpoints/finetune/<run_id>/` (git-ignored; rebuilt if missing); the
  student trains through `lib.classify.train_classifier` on its labelled
  sentences plus unlabelled *transfer* sentences the teacher labels
  (`transfer_sentences`), with the teacher's logits as an extra training
  column and the model wrapped in `DistillationLoss`. With α = 0 it learns the
  teacher's hard labels on the transfer sentences (pseudo-labels), so α
  compares soft targets with hard ones on the same sentences.
* `quantize_int8`, `size_on_disk_mb`, `latency_ms`: dynamic int8 quantisation of
  the Linear layers (weights int8, activations quantised on the fly) and what
  it costs and saves.
"""

from __future__ import annotations

import copy
import io
import json
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from datasets import DatasetDict
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from lib import finetune, store
from lib.classify import predict, tokenize
from lib.data import SPLIT_SEED, label_names, load_data
from lib.finetune import FinetuneSpec
from lib.models import load_model
from lib.paths import located
from lib.profiles import Profile
from lib.store import Record, Run


class DistillationLoss(nn.Module):
    """Wraps a student classifier so that `fit` trains it on soft + hard targets.

    Batches carry `teacher_logits` next to `labels`; the output has `.loss`,
    `.logits` and `.logs` (soft and hard parts, logged per step).
    """

    def __init__(self, student: PreTrainedModel, temperature: float = 2.0, alpha: float = 0.5):
        super().__init__()
        if temperature <= 0 or not 0 <= alpha <= 1:
            raise ValueError(f"Need temperature > 0 and 0 ≤ alpha ≤ 1; got temperature={temperature}, alpha={alpha}.")
        self.student, self.temperature, self.alpha = student, temperature, alpha
        self.config = student.config  # parameter groups read the layer count from here

    def forward(self, teacher_logits: torch.Tensor, labels: torch.Tensor, **inputs) -> SequenceClassifierOutput:
        logits = self.student(**inputs).logits.float()
        t = self.temperature
        soft = (
            F.kl_div(F.log_softmax(logits / t, -1), F.softmax(teacher_logits.float() / t, -1), reduction="batchmean")
            * t
            * t
        )
        hard = F.cross_entropy(logits, labels)
        out = SequenceClassifierOutput(loss=self.alpha * soft + (1 - self.alpha) * hard, logits=logits)
        out.logs = {"soft_loss": float(soft.detach()), "hard_loss": float(hard.detach())}
        return out


def train_teacher(spec: FinetuneSpec, profile: Profile) -> Run:
    """The fine-tuned teacher for `spec`, stored as experiment "distill_teacher" with its weights kept."""
    return store.run("distill_teacher", spec, profile, keep_checkpoint=True)


def transfer_sentences(spec: FinetuneSpec, n: int | None) -> datasets.Dataset:
    """Up to `n` training sentences (None: all) that the labelled subsample of `spec` does not hold, a fixed draw
    (`lib.data.SPLIT_SEED`): the unlabelled transfer data the teacher labels. Sanh et al. distil on the teacher's
    pretraining corpus; we use the rest of the task's training split, its labels unread."""
    labelled = set(spec.dataset()["train"]["text"])
    rest = load_data(spec.data)["train"].filter(lambda text: text not in labelled, input_columns="text")
    rest = rest.shuffle(seed=SPLIT_SEED)
    return rest.select(range(len(rest) if n is None else min(n, len(rest))))


def student_data(teacher: Path | str, spec: FinetuneSpec, transfer: int | None) -> tuple[DatasetDict, np.ndarray]:
    """The student's data set — its labelled sentences, then `transfer` unlabelled ones labelled with the teacher's
    argmax — and the teacher's logits on each of its training sentences. Cached per teacher and data within a
    process: every seed, rate and α of a student sees the same targets, computed once."""
    data = spec.identity() | {"train": None}
    key = json.dumps([str(located(teacher)), data, spec.train.max_length, spec.train.use_bf16, transfer],
                     sort_keys=True, default=str)
    if key not in _STUDENT_DATA:
        _STUDENT_DATA.clear()  # one teacher at a time: a notebook needs one, a test a few
        _STUDENT_DATA[key] = _label_with_teacher(located(teacher), spec, transfer)
    dsd, logits = _STUDENT_DATA[key]
    return DatasetDict(dict(dsd)), logits.copy()


_STUDENT_DATA: dict[str, tuple[DatasetDict, np.ndarray]] = {}


def _label_with_teacher(teacher: Path, spec: FinetuneSpec, transfer: int | None) -> tuple[DatasetDict, np.ndarray]:
    dsd = spec.dataset()
    n_labelled = len(dsd["train"])
    if transfer != 0:
        extra = transfer_sentences(spec, transfer).cast(dsd["train"].features)
        dsd["train"] = datasets.concatenate_datasets([dsd["train"], extra])
    tokenizer, model = load_model(str(teacher), "classification", label_names=label_names(dsd))
    logits, _, _ = predict(model.to(torch.device("cpu")), tokenize(dsd, tokenizer, spec.train.max_length)["train"],
                           tokenizer, bf16=spec.train.use_bf16)
    labels = np.asarray(dsd["train"]["label"])
    labels[n_labelled:] = logits[n_labelled:].argmax(-1)  # transfer sentences: the teacher's labels, theirs unread
    column = dsd["train"].features["label"]
    dsd["train"] = dsd["train"].remove_columns("label").add_column("label", labels.tolist()).cast_column("label",
                                                                                                         column)
    return dsd, logits


@dataclass
class DistillSpec:
    """A student run: a `FinetuneSpec` for the student plus the teacher and the loss mix."""

    student: FinetuneSpec
    teacher: FinetuneSpec = field(default_factory=FinetuneSpec)
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the soft (teacher) term; 0 = hard labels only
    transfer: int | None = 0  # unlabelled training sentences the teacher labels, besides the labelled (None: all)

    kind = "distill"
    keeps_checkpoint = False

    def __post_init__(self) -> None:
        if self.temperature <= 0 or not 0 <= self.alpha <= 1:
            raise ValueError(f"Need temperature > 0 and 0 ≤ alpha ≤ 1; got {self.temperature}, {self.alpha}.")
        if self.transfer is not None and (isinstance(self.transfer, bool) or self.transfer < 0):
            raise ValueError(f"transfer is a number of sentences ≥ 0 (or None: all the rest), got {self.transfer!r}.")

    @property
    def plain(self) -> bool:
        """Labels only and no transfer sentences: the student's plain fine-tuning run, teacher unused."""
        return self.alpha == 0 and self.transfer == 0

    def identity(self) -> dict:
        return self.student.identity() if self.plain else asdict(self)

    def compute(self, profile: Profile, stop_on_divergence: bool = False) -> Record:
        if self.plain:
            return self.student.compute(profile, stop_on_divergence)
        dsd, logits = student_data(train_teacher(self.teacher, profile).checkpoint, self.student, self.transfer)
        return self.student.compute(
            profile,
            stop_on_divergence,
            dsd=dsd,
            train_columns={"teacher_logits": logits},
            wrap=lambda model: DistillationLoss(model, self.temperature, self.alpha),
        )


def student_name(alpha: float, lr: float) -> str:
    kind = "hard labels" if alpha == 0 else "soft targets only" if alpha == 1 else "soft + hard"
    return f"α {alpha:g} ({kind}) · lr {finetune.lr_label(lr)}"


def student_specs(profile: Profile, device: str = "auto", temperature: float = 2.0) -> dict[str, list[DistillSpec]]:
    """Notebook 08's students, by cell: every α of `Profile.distill_alphas` at every student rate
    (`Profile.distill_rates`), over the paired seeds — all on the labelled sentences plus the transfer sentences."""
    teacher, student = notebook_specs(profile, device)
    return {student_name(a, lr): [DistillSpec(student.with_overrides(lr=lr, seed=s), teacher, temperature, a,
                                              profile.distill_transfer) for s in profile.grids.paired_seeds]
            for lr in profile.distill_rates for a in profile.distill_alphas}


def train_students(profile: Profile, device: str = "auto", temperature: float = 2.0,
                   force: bool = False) -> pd.DataFrame:
    """Every student of notebook 08, stored and replayed: one row per run with its cell (`variant`), α, rate, seed,
    accuracy, the test set's majority class, training time and the `Run` (experiment `distill`)."""
    rows = []
    for name, specs in student_specs(profile, device, temperature).items():
        for spec in specs:
            r = store.run("distill", spec, profile, force=force)
            rows.append({"variant": name, "alpha": spec.alpha, "lr": spec.student.train.lr,
                         "seed": spec.student.train.seed, "test_accuracy": r.metrics["test_accuracy"],
                         "test_majority": r.metrics["test_majority"], "train_seconds": r.metrics["train_seconds"],
                         "cached": r.cached, "run": r})
    return pd.DataFrame(rows)


def quantize_int8(model: nn.Module) -> nn.Module:
    """Dynamic int8 quantisation of every Linear layer (a copy; CPU inference only).

    torch.ao's eager-mode quantisation is deprecated in favour of torchao but
    still ships in torch 2.13; its deprecation warnings are silenced here.
    """
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(copy.deepcopy(model).to("cpu").eval(), {nn.Linear}, dtype=torch.qint8)


def size_on_disk_mb(model: nn.Module) -> float:
    """Bytes of the saved state dict (what a checkpoint file would weigh), in MB."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes / 1e6


def count_params(model: nn.Module) -> int:
    """Parameters of a float model (a quantised model's packed weights are not Parameters)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def latency_ms(
    model: nn.Module, tokenizer, texts: list[str], batch_size: int = 1, max_length: int = 128, reps: int = 3
) -> float:
    """Median wall time per sentence of CPU inference in fp32 (batches of `batch_size`), after one warm-up pass."""
    model = model.to("cpu").eval()
    batches = [
        tokenizer(texts[i : i + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        for i in range(0, len(texts), batch_size)
    ]
    model(**batches[0])
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for b in batches:
            model(**b)
        times.append((time.perf_counter() - start) / len(texts))
    return 1000 * statistics.median(times)


def correct_on_test(model: nn.Module, tokenizer, spec: FinetuneSpec) -> np.ndarray:
    """Per test sentence of `spec`, whether an (e.g. quantised) classifier is right; fp32 on CPU."""
    logits, y, _ = predict(
        model.to("cpu"), tokenize(spec.dataset(), tokenizer, spec.train.max_length)["test"], tokenizer, bf16=False
    )
    return logits.argmax(-1) == y


def notebook_specs(profile: Profile, device: str = "auto") -> tuple[FinetuneSpec, FinetuneSpec]:
    """Notebook 08's teacher (MiniLM, the baseline recipe at the working rate) and student: MiniLM's embeddings and
    every other layer (3 of 6, DistilBERT's initialisation), batch 32, on the profile's labelled sentences."""
    p = profile
    teacher = finetune.baseline_spec(profile, device=device).with_overrides(
        lr=finetune.WORKING_LR, max_train_examples=p.distill_examples, epochs=p.distill_teacher_epochs, batch_size=16
    )
    student = teacher.with_overrides(init="every-other-layer", epochs=p.distill_student_epochs, batch_size=32,
                                     eval_batch_size=128)
    return teacher, student


def _cost(model: nn.Module, tokenizer, texts: list[str]) -> dict[str, float]:
    return {
        "params (M)": count_params(model) / 1e6,
        "size on disk (MB)": size_on_disk_mb(model),
        "ms / sentence, batch 1": latency_ms(model, tokenizer, texts, 1),
        "ms / sentence, batch 32": latency_ms(model, tokenizer, texts, 32),
    }


@dataclass
class CompressionSpec:
    """Notebook 08's measurements as a stored run: the teacher in fp32 and int8 (per test sentence, whether each
    is right), parameters, size on disk and CPU latency of the teacher, its int8 copy and the students.

    Latency differs at every measurement, so it is measured once and replayed like any run: a replay shows the
    stored table and leaves `results/` unchanged. Its identity is the runs it measures and the sentence count.
    """

    teacher_run: Run = field(compare=False)
    teacher_spec: FinetuneSpec = field(compare=False)
    students: pd.DataFrame = field(compare=False)  # one row per student run: variant, test_accuracy, run (a Run)
    sentences: int = 128

    kind = "compression"
    keeps_checkpoint = False

    def identity(self) -> dict:
        return {"teacher": self.teacher_run.run_id, "students": sorted(r.run_id for r in self.students["run"]),
                "sentences": self.sentences}

    def compute(self, profile: Profile, stop_on_divergence: bool = False) -> Record:
        """Quantise and time now; the table goes into the metrics, per-sentence correctness into predictions."""
        dsd = self.teacher_spec.dataset()
        names = label_names(dsd)
        tok_t, teacher = load_model(str(located(self.teacher_run.checkpoint)), label_names=names)
        teacher_int8 = quantize_int8(teacher)
        student = self.students["run"].iloc[0].config["student"]  # the students share one architecture
        tok_s, student_shape = load_model(student["model"], label_names=names, init=student["init"])
        texts = list(dsd["test"]["text"][: self.sentences])
        correct = pd.DataFrame({"fp32_correct": correct_on_test(teacher, tok_t, self.teacher_spec),
                                "int8_correct": correct_on_test(teacher_int8, tok_t, self.teacher_spec)}).astype(int)
        acc = {k: f"{100 * correct[f'{k}_correct'].mean():.1f}" for k in ("fp32", "int8")}
        rows = [
            {"model": "teacher: MiniLM-L6, fp32", "test accuracy (%)": acc["fp32"]} | _cost(teacher, tok_t, texts),
            {"model": "teacher: MiniLM-L6, dynamic int8", "test accuracy (%)": acc["int8"]}
            | _cost(teacher_int8, tok_t, texts)
            | {"params (M)": count_params(teacher) / 1e6},
        ]
        student_cost = _cost(student_shape, tok_s, texts)  # the students share one architecture: measured once
        for variant, part in self.students.groupby("variant", sort=False):
            acc = 100 * part["test_accuracy"]
            shown = f"{acc.mean():.1f} ± {acc.std():.1f} ({len(acc)} seeds)"
            rows.append({"model": f"student: {variant}", "test accuracy (%)": shown} | student_cost)
        return Record({"table": rows, "threads": torch.get_num_threads()}, pd.DataFrame({"step": []}), correct)


def compression_table(run: Run) -> pd.DataFrame:
    """The stored measurements of a `CompressionSpec` run, one row per model."""
    return pd.DataFrame(run.metrics["table"]).set_index("model")
