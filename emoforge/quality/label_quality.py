"""How likely each consensus label is right: CROWDLAB over the jury, per segment and per corpus.

CROWDLAB (Goh, Tkachenko and Mueller 2022, "CROWDLAB: Supervised learning to infer consensus
labels and quality scores for data with multiple annotators", arXiv:2210.06812) is cleanlab's
``cleanlab/multiannotator.py: get_label_quality_multiannotator`` (``quality_method="crowdlab"``).
Reimplemented here in numpy (cleanlab is not a dependency), with its notation:

* ``n_i`` votes on item i, K labels, consensus label ``y_i``;
* ``P`` = mean share of votes agreeing with the consensus over items with more than one vote
  (the chance that any annotator gives the consensus label), ``(1 - P) / (K - 1)`` for each
  other label;
* ``e`` = the error of always answering the most common consensus label (clipped at 1e-6);
* annotator m's weight ``w_m = max(1 - (1 - a_m) / e, 1e-6)``, where ``a_m`` is its mean
  agreement with the *other* annotators on the items they share;
* the model's weight ``w_M = max(1 - err_M / e, 1e-6) * sqrt(mean n_i)``, where ``err_M`` is
  how often the model's most probable label differs from the consensus;
* the posterior ``post_i = (w_M * model_i + sum_m w_m * L_im) / (w_M + sum_m w_m)`` with
  ``L_im`` the one-hot-smoothed vote (``P`` on its label, the rest shared evenly);
* the consensus quality score is the posterior's self-confidence ``post_i[y_i]``.

emoforge's jury has no separate classifier: the "model" is the consensus distribution the
per-segment aggregator produced (the pooled vote's product of calibrated confidences), so its
entropy enters through ``model_i[y_i]``. Two additions, both from the jury: a vote an
uncalibrated agent cast (LLM, cue rules; ``aggregation.judge_discount``) is weighted by the
judge's S_final, as the consensus does; and at segment scope (phase 5, one segment, nothing to
estimate reliabilities from) every vote's ``P`` is its own stated confidence and every
annotator weighs 1 (the corpus fit replaces both, ``emoforge aggregate``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from emoforge.configs.quality import AggregationConfig
from emoforge.configs.storage import StorageConfig
from emoforge.quality.vote_source import VoteSource, source_of
from emoforge.storage.records import Annotation, LabelQuality, Record, SegmentRow, Status, Verdict, utcnow

METHOD = "crowdlab-v1"
CLIP = 1e-6  # cleanlab.internal.constants.CLIPPING_LOWER_BOUND


@dataclass(frozen=True)
class CrowdlabFit:
    """What the corpus fit learnt (the arrays are indexed like its inputs)."""

    scores: NDArray[np.float64]  # (N,) posterior probability of each consensus label
    posterior: NDArray[np.float64]  # (N, K)
    annotator_weight: NDArray[np.float64]  # (M,)
    model_weight: float
    consensus_likelihood: float


def crowdlab(
    votes: NDArray[np.intp],
    model: NDArray[np.float64],
    consensus: NDArray[np.intp],
    vote_weight: NDArray[np.float64] | None = None,
) -> CrowdlabFit:
    """CROWDLAB consensus quality scores (module docstring).

    Args:
        votes: (N, M) label codes, -1 where annotator m gave no valid label on item i.
        model: (N, K) the model's label distribution per item (rows sum to 1).
        consensus: (N,) consensus label codes.
        vote_weight: (N, M) extra weight of each vote (the judge's S_final), 1 if None.

    Returns:
        The scores, posteriors and fitted weights; with ``vote_weight`` None the scores
        equal cleanlab's ``consensus_quality_score`` (``tests/quality/test_label_quality.py``).
    """
    n_items, n_annotators = votes.shape
    k = model.shape[1]
    given = votes >= 0
    n_votes = given.sum(axis=1)
    multi = n_votes > 1
    agree = (votes == consensus[:, None]) & given
    agreement = agree.sum(axis=1) / np.maximum(n_votes, 1)
    p = float(np.mean(agreement[multi])) if multi.any() else float(np.mean(agreement[n_votes > 0]))
    p_other = (1.0 - p) / max(k - 1, 1)
    sub = consensus[multi] if multi.any() else consensus
    most_common = np.bincount(sub, minlength=k).argmax()
    majority_error = max(float(np.mean(sub != most_common)), CLIP)
    weights = np.clip(1.0 - (1.0 - _agreement_with_others(votes, given)) / majority_error, CLIP, None)
    model_error = float(np.mean(model[multi if multi.any() else slice(None)].argmax(axis=1) != sub))
    model_weight = max(1.0 - model_error / majority_error, CLIP) * math.sqrt(float(np.mean(n_votes)))
    extra = np.ones(votes.shape) if vote_weight is None else vote_weight
    w = np.where(given, weights[None, :] * extra, 0.0)  # (N, M)
    numerator = model * model_weight
    for m in range(n_annotators):
        onehot = np.zeros((n_items, k))
        rows = np.flatnonzero(given[:, m])
        onehot[rows, votes[rows, m]] = 1.0
        likelihood = np.where(onehot > 0, p, p_other)
        numerator += w[:, m : m + 1] * likelihood
    posterior = numerator / (model_weight + w.sum(axis=1, keepdims=True))
    scores = posterior[np.arange(n_items), consensus]
    return CrowdlabFit(scores, posterior, weights, model_weight, p)


def _agreement_with_others(votes: NDArray[np.intp], given: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Per annotator: mean share of the other annotators agreeing with it, over the items it
    shares with them, weighted by how many others voted (cleanlab's
    ``_get_annotator_agreement_with_annotators``); annotators sharing nothing get the mean."""
    n_votes = given.sum(axis=1)
    out = np.full(votes.shape[1], np.nan)
    for m in range(votes.shape[1]):
        mask = given[:, m] & (n_votes > 1)
        if not mask.any():
            continue
        same = ((votes[mask] == votes[mask, m : m + 1]) & given[mask]).sum(axis=1) - 1
        others = n_votes[mask] - 1
        out[m] = float(np.sum(same) / np.sum(others))
    if np.isnan(out).all():
        return np.ones(votes.shape[1])
    return np.where(np.isnan(out), np.nanmean(out), out)


# --------------------------------------------------------------------------- records


def discounted(annotation: Annotation, config: AggregationConfig, sources: Mapping[str, VoteSource]) -> bool:
    """Whether ``judge_discount`` applies to this vote."""
    mode = config.judge_discount
    return mode == "all" or (mode == "uncalibrated" and not source_of(annotation, sources).calibrated)


def judge_factor(
    annotation: Annotation, verdict: Verdict | None, config: AggregationConfig, sources: Mapping[str, VoteSource]
) -> float:
    """The judge's weight on a vote: S_final where ``judge_discount`` applies to this agent
    (as in the consensus), else 1."""
    if not discounted(annotation, config, sources) or verdict is None:
        return 1.0
    return max(verdict.s_final, config.min_weight, CLIP)


def segment_label_quality(
    valid: Sequence[Annotation],
    confidences: Sequence[float],
    distribution: dict[str, float],
    primary: str | None,
    labels: Sequence[str],
) -> LabelQuality | None:
    """Segment scope (phase 5): one item, each vote's ``P`` its (judge-discounted) confidence,
    every annotator weight 1, the model weight ``sqrt(n)``; None without a consensus label."""
    if primary is None or not valid:
        return None
    vocabulary = sorted(set(labels) | set(distribution) | {a.primary_label or "" for a in valid} - {""})
    k = len(vocabulary)
    model_p = distribution.get(primary, 0.0)
    total = math.sqrt(len(valid)) * model_p
    for annotation, c in zip(valid, confidences, strict=True):
        c = min(1.0, max(0.0, c))
        total += c if annotation.primary_label == primary else (1.0 - c) / max(k - 1, 1)
    score = total / (math.sqrt(len(valid)) + len(valid))
    return LabelQuality(score=min(1.0, max(0.0, score)), method=METHOD, scope="segment")


class CorpusLabelQuality(Record):
    """CROWDLAB fitted across a corpus: per-row scores and what it learnt about the jury."""

    scores: dict[str, LabelQuality] = Field(description="Row id -> corpus-scope label quality.")
    annotator_weights: dict[str, float] = Field(
        default_factory=dict, description="Agent -> CROWDLAB weight (agreement with the others beyond chance)."
    )
    model_weight: float | None = Field(default=None, description="Weight of the consensus distribution.")
    consensus_likelihood: float | None = Field(default=None, description="P: chance a vote gives the consensus.")
    skipped: str | None = Field(default=None, description="Why nothing was fitted, if so.")


def corpus_label_quality(
    rows: Sequence[SegmentRow],
    config: AggregationConfig,
    labels: Sequence[str],
    min_rows: int = 20,
    *,
    sources: Mapping[str, VoteSource],
) -> CorpusLabelQuality:
    """Corpus scope (``emoforge aggregate``): CROWDLAB fitted over every row with a consensus.

    Nothing is fitted (``skipped`` says why) when the corpus cannot estimate reliabilities:
    fewer than two agents, or fewer than ``min_rows`` rows with two or more valid votes.
    """
    scored = [r for r in rows if r.status == Status.ok and r.consensus is not None and r.consensus.primary_label]
    agents = sorted({a.agent for r in scored for a in r.annotations if a.status == Status.ok and a.primary_label})
    vocabulary = sorted(
        set(labels)
        | {k for r in scored if r.consensus for k in r.consensus.distribution}
        | {a.primary_label for r in scored for a in r.annotations if a.status == Status.ok and a.primary_label}
    )
    code = {lab: i for i, lab in enumerate(vocabulary)}
    column = {name: i for i, name in enumerate(agents)}
    votes = np.full((len(scored), len(agents)), -1, dtype=np.intp)
    weight = np.ones((len(scored), len(agents)))
    model = np.zeros((len(scored), len(vocabulary)))
    consensus = np.zeros(len(scored), dtype=np.intp)
    for i, row in enumerate(scored):
        cons: Any = row.consensus
        verdicts = {v.annotation_id: v for v in row.verdicts}
        for a in row.annotations:
            if a.status == Status.ok and a.primary_label:
                votes[i, column[a.agent]] = code[a.primary_label]
                weight[i, column[a.agent]] = judge_factor(a, verdicts.get(a.id), config, sources)
        for lab, p in cons.distribution.items():
            model[i, code[lab]] = p
        consensus[i] = code[cons.primary_label]
    multi = int(((votes >= 0).sum(axis=1) > 1).sum())
    if len(agents) < 2 or multi < min_rows:
        return CorpusLabelQuality(
            scores={}, skipped=f"{len(agents)} agents, {multi} rows with 2+ valid votes (needs 2 and {min_rows})"
        )
    sums = model.sum(axis=1, keepdims=True)
    model = np.where(sums > 0, model / np.where(sums > 0, sums, 1.0), 1.0 / len(vocabulary))
    fit = crowdlab(votes, model, consensus, weight)
    return CorpusLabelQuality(
        scores={
            r.row_id: LabelQuality(
                score=float(min(1.0, max(0.0, s))), method=METHOD, scope="corpus", fitted_rows=len(scored)
            )
            for r, s in zip(scored, fit.scores, strict=True)
        },
        annotator_weights={name: round(float(w), 6) for name, w in zip(agents, fit.annotator_weight, strict=True)},
        model_weight=round(fit.model_weight, 6),
        consensus_likelihood=round(fit.consensus_likelihood, 6),
    )


def write_corpus_scores(
    root: str, rows: Sequence[SegmentRow], fitted: CorpusLabelQuality, storage: StorageConfig
) -> int:
    """Rewrite the rows whose stored label quality differs from the corpus fit (same row id:
    the newest copy wins on read, every other field unchanged); returns how many."""
    updated = []
    for r in rows:
        new = fitted.scores.get(r.row_id)
        if new is not None and r.consensus is not None and r.consensus.label_quality != new:
            updated.append(r.model_copy(update={"consensus": r.consensus.model_copy(update={"label_quality": new})}))
    if updated:
        from emoforge.storage.shards import CorpusWriter, read_manifest

        manifest = read_manifest(root)
        last = manifest["runs"][-1] if manifest.get("runs") else {}
        writer = CorpusWriter(
            root,
            storage,
            f"label-quality-{utcnow().strftime('%Y%m%dT%H%M%S%f')}",
            resolved_config=last.get("config"),
            config_hash=last.get("config_hash", ""),
        )
        writer.write(updated)
        writer.close({"label_quality": METHOD, "rows": len(updated)})
    return len(updated)
