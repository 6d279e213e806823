"""Per-segment consensus: one label with how much to trust it, and whether a human should look.

``ConsensusBuilder.build`` aggregates the valid annotations of one segment with a majority
or judge-weighted vote (``agents/aggregation``), adds the multi-label set, intensity and
valence/arousal means, confidence, entropy and agreement, and flags the segment for review
with typed reasons: ``too_few_valid``, ``low_confidence``, ``annotator_conflict``,
``low_judge_score``, ``judge_failed`` and ``modality_conflict`` (e.g. a smiling face with a
sad voice: single-modality annotators whose valence points opposite ways).
"""

from __future__ import annotations

import math

from emoforge.configs.quality import AggregationConfig
from emoforge.storage.records import Annotation, Consensus, Features, RunContext, Segment, Status, Verdict

# Valence of the default taxonomy's labels, used when an annotator gives no valence itself.
LABEL_VALENCE: dict[str, float] = {
    "happy": 0.8,
    "surprised": 0.0,
    "neutral": 0.0,
    "sad": -0.7,
    "angry": -0.6,
    "fearful": -0.6,
    "disgusted": -0.6,
}
_CUE_BACKEND_MODALITY = {"face_cues": "face", "voice_cues": "voice", "text_cues": "text"}


def single_modality(annotation: Annotation) -> str | None:
    """The one modality an annotator saw (cue agents, single-modality LLM agents), else None."""
    if annotation.backend in _CUE_BACKEND_MODALITY:
        return _CUE_BACKEND_MODALITY[annotation.backend]
    seen = set(annotation.modalities_seen) & {"face", "voice", "text"}
    return seen.pop() if len(seen) == 1 else None


def valence_of(annotation: Annotation) -> float | None:
    if annotation.valence is not None:
        return annotation.valence
    return LABEL_VALENCE.get(annotation.primary_label or "")


def calibrated_distribution(annotation: Annotation) -> dict[str, float]:
    """The annotator's distribution with its primary label at its own stated confidence.

    Agents report ``label_scores`` (a shape over the taxonomy) and a separately calibrated
    ``confidence`` that the primary label is right; the primary gets the confidence and the
    other labels share the rest in proportion to their scores. Without scores the rest
    stays unassigned mass on the primary (a one-hot vote at full weight).
    """
    primary = annotation.primary_label or ""
    scores = {k: v for k, v in annotation.label_scores.items() if v > 0}
    conf = annotation.confidence
    others = {k: v for k, v in scores.items() if k != primary}
    if conf is None or not others:
        total = sum(scores.values())
        return {k: v / total for k, v in scores.items()} if scores and primary in scores else {primary: 1.0}
    rest = sum(others.values())
    return {primary: conf, **{k: (1.0 - conf) * v / rest for k, v in others.items()}}


def entropy_bits(distribution: dict[str, float]) -> float:
    return max(0.0, -sum(p * math.log2(p) for p in distribution.values() if p > 0))


class ConsensusBuilder:
    """Aggregates one segment's jury; see the module docstring."""

    def __init__(self, config: AggregationConfig, ctx: RunContext) -> None:
        self.config = config
        self.ctx = ctx

    def build(
        self,
        segment: Segment,
        features: Features | None,
        annotations: list[Annotation],
        verdicts: list[Verdict],
    ) -> Consensus:
        review = self.config.review
        valid = [a for a in annotations if a.status == Status.ok and a.primary_label]
        by_annotation = {v.annotation_id: v for v in verdicts}
        judged = [by_annotation.get(a.id) for a in valid]
        # The weighted vote needs a verdict for every vote; otherwise say honestly it was a plain vote.
        method = self.config.method if all(v is not None for v in judged) and valid else "majority"
        weights = [max(v.s_final, self.config.min_weight) if v is not None else 1.0 for v in judged]
        if method == "majority":
            weights = [1.0] * len(valid)
        if valid and sum(weights) <= 0:
            weights = [1.0] * len(valid)  # every vote judged worthless: fall back to counting them
        reasons: list[str] = []
        if len(valid) < review.min_valid_annotations:
            reasons.append(
                f"too_few_valid: {len(valid)} of {len(annotations)} annotations < {review.min_valid_annotations}"
            )
        distribution = self._distribution(segment, valid, weights, method)
        primary = max(sorted(distribution), key=lambda k: distribution[k]) if distribution else None
        confidence = distribution.get(primary, 0.0) if primary else 0.0
        agreement = sum(a.primary_label == primary for a in valid) / len(valid) if valid and primary else None
        if primary is not None and confidence < review.min_confidence:
            reasons.append(f"low_confidence: {confidence:.2f} < {review.min_confidence:.2f}")
        if agreement is not None and agreement < review.min_agreement:
            reasons.append(f"annotator_conflict: agreement {agreement:.2f} < {review.min_agreement:.2f}")
        reasons += self._judge_reasons(judged)
        if review.flag_modality_conflict:
            reasons += self._modality_conflict(features, valid)
        return Consensus(
            segment_id=segment.id,
            method=method,
            primary_label=primary,
            labels=self._label_set(valid, weights, primary),
            distribution=distribution,
            confidence=min(1.0, confidence),
            entropy=entropy_bits(distribution),
            agreement=agreement,
            intensity=_weighted_mean([a.intensity for a in valid], weights),
            valence=_weighted_mean([a.valence for a in valid], weights),
            arousal=_weighted_mean([a.arousal for a in valid], weights),
            n_annotations=len(annotations),
            n_valid=len(valid),
            needs_review=bool(reasons),
            review_reasons=reasons,
            provenance=self.ctx.provenance(stage="aggregate", model=method),
        )

    def _distribution(
        self, segment: Segment, valid: list[Annotation], weights: list[float], method: str
    ) -> dict[str, float]:
        if not valid:
            return {}
        import pandas as pd

        from emoforge.agents.aggregation import Aggregator, MajorityVote, SoftVote, WeightedVote

        df = pd.DataFrame(
            {
                "task": segment.id,
                "worker": [a.agent for a in valid],
                "label": [a.primary_label for a in valid],
                "weight": weights,
            }
        )
        if method == "soft":
            df = pd.DataFrame(
                [
                    {"task": segment.id, "worker": a.agent, "label": label, "prob": p, "weight": w}
                    for a, w in zip(valid, weights, strict=True)
                    for label, p in calibrated_distribution(a).items()
                ]
            )
            model: Aggregator = SoftVote()
        else:
            model = WeightedVote() if method == "weighted" else MajorityVote()
        row = model.fit(df).predict_proba().loc[segment.id]
        return {str(label): float(p) for label, p in row.items() if p > 0}

    def _label_set(self, valid: list[Annotation], weights: list[float], primary: str | None) -> list[str]:
        total = sum(weights)
        if not valid or total <= 0:
            return []
        share: dict[str, float] = {}
        for annotation, weight in zip(valid, weights, strict=True):
            for label in set(annotation.labels) | {annotation.primary_label or ""}:
                if label:
                    share[label] = share.get(label, 0.0) + weight / total
        chosen = sorted((k for k, s in share.items() if s >= self.config.min_label_share), key=lambda k: (-share[k], k))
        if primary is not None and primary in chosen:
            chosen.remove(primary)
        return ([primary] if primary else []) + chosen

    def _judge_reasons(self, judged: list[Verdict | None]) -> list[str]:
        review = self.config.review
        reasons = []
        broken = [v for v in judged if v is not None and v.status != Status.ok]
        if broken:
            reasons.append(f"judge_failed: {len(broken)} judgement(s) failed or unparsable")
        scores = [v.s_final for v in judged if v is not None]
        if scores and sum(scores) / len(scores) < review.min_judge_score:
            reasons.append(
                f"low_judge_score: mean S_final {sum(scores) / len(scores):.2f} < {review.min_judge_score:.2f}"
            )
        return reasons

    def _modality_conflict(self, features: Features | None, valid: list[Annotation]) -> list[str]:
        threshold = self.config.review.conflict_min_valence
        available = set(features.modalities) if features is not None else None
        per_modality: dict[str, list[tuple[float, str]]] = {}
        for annotation in valid:
            modality = single_modality(annotation)
            valence = valence_of(annotation)
            if modality is None or valence is None or (available is not None and modality not in available):
                continue
            per_modality.setdefault(modality, []).append((valence, annotation.primary_label or ""))
        means = {m: (sum(v for v, _ in xs) / len(xs), xs[0][1]) for m, xs in per_modality.items()}
        positive = [(m, v, lab) for m, (v, lab) in means.items() if v >= threshold]
        negative = [(m, v, lab) for m, (v, lab) in means.items() if v <= -threshold]
        return [
            f"modality_conflict: {pm}={pl} ({pv:+.2f}) vs {nm}={nl} ({nv:+.2f})"
            for pm, pv, pl in sorted(positive)
            for nm, nv, nl in sorted(negative)
        ]


def _weighted_mean(values: list[float | None], weights: list[float]) -> float | None:
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if v is not None]
    total = sum(w for _, w in pairs)
    if not pairs:
        return None
    if total <= 0:
        return sum(v for v, _ in pairs) / len(pairs)
    return sum(v * w for v, w in pairs) / total
