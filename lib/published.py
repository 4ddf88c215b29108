"""Published numbers the notebooks show beside ours (sources and context: docs/literature.md)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

SUN_TABLE4 = pd.DataFrame(
    {1.0: [5.42, 5.52], 0.95: [5.40, 5.46], 0.90: [5.52, 5.44], 0.85: [5.65, 5.58]}, index=["2e-5", "2.5e-5"]
)
"""Sun et al. 2019, Table 4: BERT-base on IMDb, test error (%) by base rate (rows) and layer-wise decay ξ (columns)."""

SUN_TABLE2 = {"head": 5.63, "tail": 5.44, "head+tail": 5.42}
"""Sun et al. 2019, Table 2: BERT-base on IMDb cut to 512 tokens, test error (%) by which end is kept."""


@dataclass(frozen=True)
class Counterpart:
    """A published result beside our findings rows (`finding`: a regular expression searched in each row's name)."""

    notebook: str
    finding: str
    source: str
    theirs: str  # what they report, with its numbers
    direction: int | None  # their effect's sign in our row's terms (variant − baseline): +1, −1, 0 for none or a
    # negligible one, None for an effect whose sign our row cannot be compared with
    why: str  # why our number may differ


COUNTERPARTS = [
    Counterpart("01", "^news_outlets: fine-tuning from the budget", "Gururangan et al. 2020 (Don't Stop Pretraining)",
                "pretraining on the task's domain helps in-domain tasks, news among them (HyperPartisan, AG News: "
                "domain-adaptive pretraining of RoBERTa)", +1,
                "theirs continues a pretrained RoBERTa on millions of in-domain documents; ours is a 2-layer encoder "
                "pretrained for minutes on 3,824 news articles, against random weights"),
    Counterpart("01", "^movie_snippets: fine-tuning from the budget", "Geiping & Goldstein 2023 (Cramming)",
                "BERT-base without pretraining: SST-2 79.9 vs 91.9 pretrained (+12.0)", +1,
                "ours is a 2-layer encoder pretrained for minutes on news, fine-tuned on another domain (movie "
                "reviews); theirs is BERT-base after a GPU-day on books and Wikipedia"),
    Counterpart("01", "^movie_snippets: fine-tuning from shipped pretrained", "Geiping & Goldstein 2023 (Cramming)",
                "pretraining is worth +12.0 SST-2 points to BERT-base (79.9 → 91.9)", +1,
                "MiniLM is distilled from a large pretrained teacher (quick keeps its first two layers, the depth of "
                "our checkpoints): the positive control; both arms fine-tune on notebook 01's budget of sentences, "
                "far fewer than SST-2's 67k"),
    Counterpart("01", "^factor table: pre-LN", "Xiong et al. 2020",
                "pre-LN trains without warmup and faster than post-LN", +1,
                "ours: held-out masked-LM accuracy after a few hundred steps of a 2-layer model, each block at its "
                "best rate of a small grid"),
    Counterpart("01", "^factor table: every chosen token", "Huebner et al. 2021 (BabyBERTa); Wettig et al. 2023",
                "no unmasking (every chosen token shown as [MASK]) trained better on 5M words", +1,
                "ours: one pretraining seed on 2.7M tokens, scored at [MASK] inputs"),
    Counterpart("01", "NSP accuracy", "Devlin et al. 2019, Table 5",
                "removing NSP moves SST-2 dev 92.7 → 92.6 (BERT-base; −0.1)", 0,
                "NSP accuracy against chance tests whether the head learned the task at all, not what it buys "
                "downstream"),
    Counterpart("02", "rate chosen on validation against BERT-base", "Devlin et al. 2019",
                "BERT-base fine-tunes well within lr {5e-5, 3e-5, 2e-5}: no higher rate is called for", 0,
                "MiniLM has 22.7M parameters and the quick budget 64 updates: a small model on a short budget "
                "needs a higher rate (Turc et al.'s compact BERTs)"),
    Counterpart("03", "warmup [0-9.]+ against none$", "Mosbach et al. 2021",
                "warmup (with bias correction) reduces failed runs across seeds (RTE, MRPC, CoLA)", -1,
                "their failures come from vanishing gradients over long runs of BERT-large; ours are 64 updates "
                "of a 6-layer model at higher rates"),
    Counterpart("03", "bias correction against with", "Mosbach et al. 2021; Devlin on google-research/bert#153",
                "the original BERT optimizer without bias correction fails more often; Devlin: it \"doesn't really "
                "matter when using a reasonable learning rate warmup\"", +1,
                "our no-bias-correction arm has no warmup, where the larger early steps matter most"),
    Counterpart("04", r"^Adam\+L2 against AdamW|shrinking the weights as much", "Loshchilov & Hutter 2019",
                "decoupled decay (AdamW) generalises better than L2 in Adam, and its best λ does not move with the "
                "rate", -1,
                "over a short run AdamW's decay shrinks each weight by lr·λ per step (1e-4 × λ), while L2 in Adam "
                "changes the update itself: a difference here is the algorithm, not the regularisation they "
                "measured over long runs"),
    Counterpart("04", r"Adam\+L2: λ's effect depends on the rate", "Loshchilov & Hutter 2019",
                "with L2 in Adam the best λ moves with the learning rate", None,
                "two λ at three rates with three seeds each can see only a large interaction"),
    Counterpart("04", "AdamW: λ's effect depends on the rate", "Loshchilov & Hutter 2019",
                "with decoupled decay the best λ stays put as the rate changes", 0,
                "as above; and in a short run AdamW's λ barely acts at all"),
    Counterpart("05", "^ξ [0-9.]+ at its best rate", "Sun et al. 2019, Table 4",
                "ξ 0.95 at lr 2e-5: IMDb error 5.40 vs 5.42 (+0.02 accuracy points); ξ 0.85: 5.65 (−0.23)", 0,
                "a 0.02-point effect needs thousands of seeds to see (notebook 05's seed note); ξ 0.5 is a far "
                "stronger decay, which Zhang et al. 2021 expect to matter only with few samples and high rates"),
    Counterpart("07", "keep the tail instead", "Sun et al. 2019, Table 2",
                "IMDb cut to 512 tokens: error head 5.63, tail 5.44 (+0.19 accuracy points)", +1,
                "which end carries the label is a property of the genre: review endings summarise, our single "
                "sentences are cut to a few words"),
    Counterpart("07", r"keep the head\+tail instead", "Sun et al. 2019, Table 2",
                "IMDb cut to 512 tokens: error head 5.63, head+tail 5.42 (+0.21 accuracy points)", +1,
                "as above; their ranking rests on single runs"),
    Counterpart("07", r"at equal epochs \(", "Goyal et al. 2017; Hoffer et al. 2017",
                "a bigger batch at the same rate and epochs trains worse: fewer updates (the 'generalization gap')",
                -1, "their runs are long; ours are 64 updates or fewer, where every update counts"),
    Counterpart("07", "rate scaled by √", "Hoffer et al. 2017; Malladi et al. 2022",
                "scaling the rate with the batch (√k for Adam) recovers the small batch's accuracy", +1,
                "the square-root rule is derived for many small steps; our bigger batches make a few dozen or fewer"),
    Counterpart("08", "^student accuracy with the teacher", "Sanh et al. 2019 (DistilBERT), Table 4",
                "removing the soft-target (distillation) loss costs GLUE score, second only to a random "
                "initialisation of the student", +1,
                "they distil during pretraining, on BERT's corpus, with three losses; we distil a task classifier "
                "on a few thousand transfer sentences, and our hard-label arm already learns the teacher's answers "
                "on those same sentences"),
]
"""Our findings beside the literature (sources and their numbers: docs/literature.md)."""
