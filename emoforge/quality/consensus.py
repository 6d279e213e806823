"""Per-segment consensus: one label with how much to trust it, and whether a human should look.

``ConsensusBuilder.build`` aggregates the valid annotations of one segment with the
configured per-segment aggregator (``emoforge/quality/aggregation``) fed the input shape it
declares, adds the multi-label set, intensity and valence/arousal means, confidence,
entropy and agreement, and flags the segment for review with typed reasons:
``too_few_valid``, ``low_confidence``, ``annotator_conflict``,
``low_judge_score``, ``judge_failed``, ``modality_conflict`` (e.g. a smiling face with a
sad voice: single-modality annotators whose valence points opposite ways) and ``off_domain``
(the label rests only on trained recognizers that heard or saw something unlike their
training data; their votes already lean on their priors). It also scores the
label's quality (``label_quality.segment_label_quality``, CROWDLAB at segment scope), which
orders the review queue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from emoforge.configs.agents import TaxonomyConfig
from emoforge.configs.emotions import DEFAULT_LABELS, LABEL_VALENCE
from emoforge.configs.quality import AggregationConfig
from emoforge.quality.aggregation import Aggregator, MajorityVote, PooledVote, Scope, Votes, aggregator
from emoforge.quality.label_quality import discounted, segment_label_quality
from emoforge.quality.vote_source import VoteSource, source_of
from emoforge.storage.records import Annotation, Consensus, Features, RunContext, Segment, Status, Verdict


def single_modality(annotation: Annotation, sources: Mapping[str, VoteSource]) -> str | None:
    """The one modality an annotator saw (cue agents, single-modality LLM agents), else None."""
    declared = source_of(annotation, sources).modality
    if declared is not None:
        return declared
    seen = set(annotation.modalities_seen) & {"face", "voice", "text"}
    return seen.pop() if len(seen) == 1 else None


def valence_of(annotation: Annotation) -> float | None:
    if annotation.valence is not None:
        return annotation.valence
    # The label's circumplex valence (configs/emotions.py) when the annotator gave none.
    return LABEL_VALENCE.get(annotation.primary_label or "")


def vote_distribution(annotation: Annotation, labels: list[str], confidence: float) -> dict[str, float]:
    """What one vote says over ``labels``: ``confidence`` on its label, the rest spread evenly.

    Low confidence moves a vote toward the uniform (uninformative) distribution, never
    toward the annotator's runner-up labels: those are how the annotator ranks what it did
    not choose, not evidence for them (see ``PooledVote``).
    """
    primary = annotation.primary_label or ""
    vocabulary = sorted(set(labels) | {primary})
    c = min(1.0, max(0.0, confidence))
    rest = (1.0 - c) / len(vocabulary)
    return {k: rest + (c if k == primary else 0.0) for k in vocabulary}


def entropy_bits(distribution: dict[str, float]) -> float:
    return max(0.0, -sum(p * math.log2(p) for p in distribution.values() if p > 0))


class ConsensusBuilder:
    """Aggregates one segment's jury; see the module docstring."""

    def __init__(
        self,
        config: AggregationConfig,
        ctx: RunContext,
        taxonomy: TaxonomyConfig | None = None,
        priors: Mapping[str, Mapping[str, float]] | None = None,
        *,
        sources: Mapping[str, VoteSource],
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.aggregator = aggregator(config.method, Scope.SEGMENT)
        # Agent name -> the label distribution it was trained on (agents.recognizers.vote_priors).
        self.priors = dict(priors or {})
        # Backend name -> its modality and calibration (agents.providers.vote_sources).
        self.sources = dict(sources)
        # K of the pooled vote: a vote's leftover mass is spread over the whole taxonomy.
        self.labels = list(taxonomy.labels) if taxonomy is not None else list(DEFAULT_LABELS)

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
        # A vote the judge weighs needs a verdict for every vote; otherwise say honestly it was a plain vote.
        needs_judge = self.aggregator.spec.votes.judged or any(self._discounted(a) for a in valid)
        complete = bool(valid) and (not needs_judge or all(v is not None for v in judged))
        chosen = self.aggregator if complete else MajorityVote
        shape, method = chosen.spec.votes, chosen.spec.name
        weights = [max(v.s_final, self.config.min_weight) if v is not None else 1.0 for v in judged]
        if shape is Votes.LABELS:
            weights = [1.0] * len(valid)
        if valid and sum(weights) <= 0 and shape.judged:
            # Every vote judged worthless: fall back to counting them. Confidences need no
            # fallback: a worthless vote is a uniform one, and ties go to given labels.
            weights = [1.0] * len(valid)
        reasons: list[str] = []
        if len(valid) < review.min_valid_annotations:
            reasons.append(
                f"too_few_valid: {len(valid)} of {len(annotations)} annotations < {review.min_valid_annotations}"
            )
        distribution = self._distribution(segment, valid, weights, chosen)
        # Ties (e.g. every vote at zero confidence) go to the label with the most votes behind
        # it, so a flat distribution never elects a label nobody gave.
        support = {k: sum(w for a, w in zip(valid, weights, strict=True) if a.primary_label == k) for k in distribution}
        votes = {k: sum(a.primary_label == k for a in valid) for k in distribution}
        # Elected among the labels some valid annotation gave: with output priors a label two
        # annotators each ranked second can carry probability, but a corpus label must be
        # one an annotator stood behind.
        given = {a.primary_label for a in valid if a.primary_label in distribution}
        ranked = sorted(given, key=lambda k: (-round(distribution[k], 12), -support[k], -votes[k], k))
        primary = ranked[0] if ranked else None
        confidence = distribution.get(primary, 0.0) if primary else 0.0
        agreement = sum(a.primary_label == primary for a in valid) / len(valid) if valid and primary else None
        if primary is not None and confidence < review.min_confidence:
            reasons.append(f"low_confidence: {confidence:.2f} < {review.min_confidence:.2f}")
        if agreement is not None and agreement < review.min_agreement:
            reasons.append(f"annotator_conflict: agreement {agreement:.2f} < {review.min_agreement:.2f}")
        reasons += self._judge_reasons(judged)
        if review.flag_modality_conflict:
            reasons += self._modality_conflict(features, valid)
        if review.flag_off_domain:
            reasons += off_domain_reasons(valid, primary)
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
            label_quality=segment_label_quality(
                valid,
                [
                    self.vote_confidence(a, v.s_final if v is not None else 1.0)
                    for a, v in zip(valid, judged, strict=True)
                ],
                distribution,
                primary,
                self.labels,
            ),
        )

    def _distribution(
        self, segment: Segment, valid: list[Annotation], weights: list[float], chosen: type[Aggregator]
    ) -> dict[str, float]:
        if not valid:
            return {}
        import pandas as pd

        df = pd.DataFrame(
            {
                "task": segment.id,
                "worker": [a.agent for a in valid],
                "label": [a.primary_label for a in valid],
                "weight": weights,
            }
        )
        if chosen.spec.votes is Votes.CONFIDENCES:
            df = df.assign(confidence=[self.vote_confidence(a, w) for a, w in zip(valid, weights, strict=True)])
        elif chosen.spec.votes is Votes.JUDGED_DISTRIBUTIONS:
            df = pd.DataFrame(
                [
                    {"task": segment.id, "worker": a.agent, "label": label, "prob": p, "weight": w}
                    for a, w in zip(valid, weights, strict=True)
                    for label, p in self._read_vote(a).items()
                ]
            )
        model = chosen.for_segments(self.config, self.labels, self.priors)
        row = model.fit(df).predict_proba().loc[segment.id]
        return {str(label): float(p) for label, p in row.items() if p > 0}

    def _read_vote(self, annotation: Annotation) -> dict[str, float]:
        """One vote as a distribution for the soft mixture: what it says on a uniform prior,
        i.e. its likelihood ratio against its agent's output prior (``PooledVote.encode``),
        normalised. With a uniform output prior this is ``vote_distribution``; with the text
        model's TV-dialogue prior a confident "neutral" is worth less than its confidence,
        as in the pooled vote (without it the soft vote scored 0.522 on RAVDESS)."""
        import numpy as np
        import pandas as pd

        confidence = self.vote_confidence(annotation, 1.0)
        if annotation.agent not in self.priors:
            return vote_distribution(annotation, self.labels, confidence)
        row = {"task": "t", "worker": annotation.agent, "label": annotation.primary_label, "confidence": confidence}
        encoded = PooledVote(self.labels, self.priors, reference="uniform").encode(pd.DataFrame([row]))
        ratio = np.exp(encoded.log_r[0] - encoded.log_r[0].max())
        return {label: float(r) for label, r in zip(encoded.vocabulary, ratio / ratio.sum(), strict=True)}

    def vote_confidence(self, annotation: Annotation, weight: float) -> float:
        """The probability that this vote is right: its calibrated confidence, discounted by
        the judge's weight where ``judge_discount`` applies to it (``weight`` is 1 otherwise)."""
        c = annotation.confidence if annotation.confidence is not None else self.config.missing_confidence
        w = min(1.0, max(0.0, weight)) if self._discounted(annotation) else 1.0
        return min(1.0, max(0.0, c)) * w

    def _discounted(self, annotation: Annotation) -> bool:
        return discounted(annotation, self.config, self.sources)

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
            modality = single_modality(annotation, self.sources)
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


def off_domain_reasons(valid: list[Annotation], primary: str | None) -> list[str]:
    """``off_domain`` when the elected label rests only on votes whose input was unlike their
    model's training data: no vote without that doubt (in-domain, or an agent that declares no
    domain, such as an LLM) gave it. An off-domain vote the others outweigh, or one that merely
    agrees with an in-domain vote, leaves the label standing on something its model knows."""
    backing = [a for a in valid if a.primary_label == primary]
    if primary is None or not backing or not all(a.domain is not None and a.domain.off_domain for a in backing):
        return []
    return [
        "off_domain: "
        + ", ".join(f"{a.agent} trust {a.domain.trust:.2f} < {a.domain.min_trust:.2f}" for a in backing if a.domain)
    ]


def _weighted_mean(values: list[float | None], weights: list[float]) -> float | None:
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if v is not None]
    total = sum(w for _, w in pairs)
    if not pairs:
        return None
    if total <= 0:
        return sum(v for v, _ in pairs) / len(pairs)
    return sum(v * w for v, w in pairs) / total
