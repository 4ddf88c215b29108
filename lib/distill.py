"""Knowledge distillation and int8 compression of a fine-tuned classifier (notebook 08).

* `DistillationLoss` (Hinton et al. 2015): the student matches the teacher's
  temperature-softened class distribution *and* the true labels,
  loss = α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1 − α)·CE(z_s, y).
  The T² keeps the soft term's gradients on the scale of the hard term's.
* `teacher`: fine-tune a teacher per a `FinetuneSpec` and keep its weights
  under `checkpoints/` (git-ignored); rebuilt if missing.
* `run_distillation`: one stored, resumable student run, like `run_finetune`.
* `quantize_int8`, `size_on_disk_mb`, `latency_ms`: dynamic int8 quantisation of
  the Linear layers (weights int8, activations quantised on the fly) and what
  it costs and saves.
"""
from __future__ import annotations

import functools
import io
import shutil
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from lib.data import label_names, load_data
from lib.experiment import FinetuneSpec, run_finetune, train
from lib.models import load_model, quiet_transformers
from lib.paths import CHECKPOINT_DIR
from lib.results import Run, cached_run, run_id, stored_path
from lib.trainer import predict, tokenize


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
        soft = F.kl_div(F.log_softmax(logits / t, -1), F.softmax(teacher_logits.float() / t, -1), reduction="batchmean") * t * t
        hard = F.cross_entropy(logits, labels)
        out = SequenceClassifierOutput(loss=self.alpha * soft + (1 - self.alpha) * hard, logits=logits)
        out.logs = {"soft_loss": float(soft.detach()), "hard_loss": float(hard.detach())}
        return out


def teacher(spec: FinetuneSpec, profile: str = "quick") -> tuple[Path, Run]:
    """The fine-tuned teacher for `spec`: its weights folder and its stored run.

    Weights go to checkpoints/finetune/<run_id>/ (git-ignored); the run record
    (history, metrics, predictions) is stored like any other, as experiment
    "distill_teacher". If either is missing, the teacher is trained (once).
    """
    path = CHECKPOINT_DIR / "finetune" / run_id(asdict(spec))
    if (path / "config.json").exists() and stored_path("distill_teacher", asdict(spec), profile) is not None:
        return path, run_finetune("distill_teacher", spec, profile)
    record, model, tokenizer = train(spec)
    tmp = path.with_name(path.name + ".tmp")
    with quiet_transformers():
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    shutil.rmtree(path, ignore_errors=True)
    tmp.replace(path)
    return path, cached_run("distill_teacher", asdict(spec), lambda: record, profile, force=True)


def teacher_logits(teacher: Path | str, spec: FinetuneSpec) -> np.ndarray:
    """The teacher's logits on the student's training split (same subsample).

    Cached per teacher and split within a process: every seed of a student
    sees the same soft targets, computed once (≈ 6 s for 2,048 sentences).
    """
    return _teacher_logits(str(teacher), spec.data, spec.max_train_examples, spec.max_eval_examples, spec.max_test_examples,
                           spec.train.max_length, bool(spec.train.bf16)).copy()


@functools.lru_cache(maxsize=4)
def _teacher_logits(teacher: str, data: str, n_train, n_eval, n_test, max_length: int, bf16: bool) -> np.ndarray:
    dsd = load_data(data, max_train_examples=n_train, max_eval_examples=n_eval, max_test_examples=n_test)
    tokenizer, model = load_model(teacher, "classification", label_names=label_names(dsd))
    logits, _, _ = predict(model.to(torch.device("cpu")), tokenize(dsd, tokenizer, max_length)["train"], tokenizer, bf16=bf16)
    return logits


@dataclass
class DistillSpec:
    """A student run: a `FinetuneSpec` for the student plus the teacher and the loss mix."""

    student: FinetuneSpec
    teacher: FinetuneSpec = field(default_factory=FinetuneSpec)
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the soft (teacher) term; 0 = labels only


def run_distillation(experiment: str, spec: DistillSpec, profile: str = "quick", force: bool = False) -> Run:
    """Train the student with distillation (or on labels alone when alpha = 0); stored and replayed."""
    if spec.alpha == 0:  # labels only: exactly a plain fine-tuning run
        return run_finetune(experiment, spec.student, profile, force)

    def compute():
        soft = teacher_logits(teacher(spec.teacher, profile)[0], spec.student)
        return train(spec.student, teacher_logits=soft, temperature=spec.temperature, alpha=spec.alpha)[0]

    return cached_run(experiment, asdict(spec), compute, profile=profile, force=force)


def quantize_int8(model: nn.Module) -> nn.Module:
    """Dynamic int8 quantisation of every Linear layer (a copy; CPU inference only).

    torch.ao's eager-mode quantisation is deprecated in favour of torchao but
    still ships in torch 2.13; its deprecation warnings are silenced here.
    """
    import copy

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
def latency_ms(model: nn.Module, tokenizer, texts: list[str], batch_size: int = 1, max_length: int = 128, reps: int = 3) -> float:
    """Median wall time per sentence of CPU inference in fp32 (batches of `batch_size`), after one warm-up pass."""
    model = model.to("cpu").eval()
    batches = [tokenizer(texts[i : i + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
               for i in range(0, len(texts), batch_size)]
    model(**batches[0])
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for b in batches:
            model(**b)
        times.append((time.perf_counter() - start) / len(texts))
    return 1000 * statistics.median(times)


def evaluate_on_test(model: nn.Module, tokenizer, spec: FinetuneSpec) -> float:
    """Test accuracy of an (e.g. quantised) classifier on `spec`'s test split, fp32 on CPU."""
    logits, y, _ = predict(model.to("cpu"), tokenize(spec.dataset(), tokenizer, spec.train.max_length)["test"], tokenizer, bf16=False)
    return float((logits.argmax(-1) == y).mean())

