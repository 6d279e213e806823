"""Is the cited evidence really why? ERASER's sufficiency and comprehensiveness, on our records.

ERASER (DeYoung et al., 2020) re-asks a model with only its rationale (sufficiency:
p(y|x) - p(y|r), lower is better) and with the rationale removed (comprehensiveness:
p(y|x) - p(y|x\\r), higher is better). Here the rationale is the annotation's cited
``evidence`` (``Cue``: modality, feature, time span), the masking is ``masking.py``, and the
same annotator object is asked again. With y the annotation's primary label and
p(y) = ``label_scores[y]`` when the agent gives a distribution, else its confidence when
it answers y again and 0 when it answers anything else:

* **sufficiency** = [y_only = y] * min(1, p_only(y) / p_full(y)): the share of its
  confidence the annotator keeps when shown only what it cited; 0 when the label changes.
* **necessity** = 1 - [y_removed = y] * min(1, p_removed(y) / p_full(y)): the share it loses
  when the cited evidence is removed; 1 when the label changes.

Both are in [0, 1], higher = more faithful. Ratios rather than ERASER's differences: our
agents' confidences live on different scales (cue agents are capped at the human
single-modality rate, 0.41 voice / 0.58 face; recognizers are calibrated; LLMs state one),
and a difference would cap a low-confidence agent's necessity at its own confidence.
A masked run that fails because the input is now missing (no_face, no_speech, no_audio,
no_video, invalid_input) is an annotator that cannot decide without it: sufficiency 0 /
necessity 1. A masked run that fails for any other reason (budget, provider, refusal)
measured nothing: the row is failed with that error_kind. An annotation citing no
evidence scores 0 on both without a call: nothing cited explains nothing.
``faithfulness`` = (sufficiency + necessity) / 2 is the judge's S_faith.

Within a modality whose cues name features we can blank (AU12, f0_mean_hz, f0_cv), "only
the cited" keeps just those features and "removed" blanks just them; a modality cited
without such features (a transcript, a recognizer's ``fer_happy``) is kept or dropped whole.
Paid re-asks (an LLM agent's, unless its response cache already holds them) are skipped
unless ``include_paid``: each annotation costs two more calls; ``estimate`` prices them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pydantic import Field

from emoforge.agents.base import Annotator, SegmentClip
from emoforge.agents.costs import CostLedger, add_usage
from emoforge.agents.faithfulness.masking import ALL_PARTS, blank_features, drop_parts, maskable, parts_of
from emoforge.storage.records import (
    Annotation,
    ErrorKind,
    Features,
    Record,
    Segment,
    Status,
    Usage,
)

# Failures that mean "this input is no longer there", i.e. the annotator cannot decide.
MISSING_INPUT = frozenset(
    {ErrorKind.no_face, ErrorKind.no_speech, ErrorKind.no_audio, ErrorKind.no_video, ErrorKind.invalid_input}
)


class FaithfulnessScore(Record):
    """Sufficiency and necessity of one annotation's cited evidence (module docstring)."""

    annotation_id: str
    agent: str
    status: Status = Status.ok
    error_kind: ErrorKind | None = None
    error: str | None = None
    label: str | None = None
    label_only_cited: str | None = Field(None, description="Label when shown only the cited evidence.")
    label_without_cited: str | None = Field(None, description="Label with the cited evidence removed.")
    sufficiency: float | None = Field(None, ge=0, le=1)
    necessity: float | None = Field(None, ge=0, le=1)
    usage: Usage = Field(default_factory=Usage, description="Calls and cost of the two re-asks.")

    @property
    def faithfulness(self) -> float | None:
        if self.sufficiency is None or self.necessity is None:
            return None
        return (self.sufficiency + self.necessity) / 2.0


def is_paid(usage: Usage) -> bool:
    """Whether re-asks estimated at ``usage`` would reach a provider: offline cue agents and
    trained recognizers estimate nothing, an LLM agent a call (none when its cache has it)."""
    return usage.calls > 0 or usage.cost_usd > 0


def p_label(annotation: Annotation, label: str) -> float:
    if annotation.label_scores:
        return float(annotation.label_scores.get(label, 0.0))
    if annotation.primary_label == label:
        return float(annotation.confidence if annotation.confidence is not None else 1.0)
    return 0.0


MaskedInput = tuple[Features, SegmentClip | None]


def masked_inputs(
    annotation: Annotation, features: Features, clip: SegmentClip | None
) -> tuple[MaskedInput, MaskedInput]:
    """(only the cited evidence, the cited evidence removed) as masked Features and clips."""
    cited = {c.modality for c in annotation.evidence}
    named: dict[str, set[str]] = defaultdict(set)
    for c in annotation.evidence:
        if c.feature:
            named[c.modality].add(c.feature)
    # Feature-level only where every named feature can be blanked (the AU and prosody keys of
    # the cue agents); a recognizer's own keys (fer_happy, level_dbfs) mean the whole modality.
    named = defaultdict(set, {m: fs for m, fs in named.items() if all(maskable(f) for f in fs)})
    keep = parts_of(cited)
    only = drop_parts(features, clip, ALL_PARTS - keep)
    only = (blank_features(only[0], {f for fs in named.values() for f in fs}, keep=True), only[1])
    whole = {m for m in cited if not named.get(m)}
    without = drop_parts(features, clip, parts_of(whole))
    without = (blank_features(without[0], {f for fs in named.values() for f in fs}), without[1])
    return only, without


class FaithfulnessProbe:
    """Re-asks annotators with masked evidence and scores each annotation.

    Args:
        include_paid: also probe LLM agents (two calls per annotation, from their ledger).
        ledger: where the re-asks' usage is recorded (the run's), as ``{agent}:faithfulness``.
    """

    def __init__(self, include_paid: bool = False, ledger: CostLedger | None = None) -> None:
        self.include_paid = include_paid
        self.ledger = ledger

    def estimate(
        self,
        annotator: Annotator,
        segment: Segment,
        features: Features,
        annotation: Annotation,
        clip: SegmentClip | None = None,
    ) -> Usage:
        """What the two re-asks would cost (``--dry-run``); zero when skipped or offline."""
        if not annotation.evidence or annotation.status != Status.ok:
            return Usage()
        usage = self._reask_cost(annotator, segment, *masked_inputs(annotation, features, clip))
        return usage if self.include_paid or not is_paid(usage) else Usage()

    @staticmethod
    def _reask_cost(annotator: Annotator, segment: Segment, only: MaskedInput, without: MaskedInput) -> Usage:
        """What the two masked re-asks cost: the annotator's own estimate of each."""
        return add_usage(annotator.estimate(segment, *only), annotator.estimate(segment, *without))

    def upper_bound(
        self, annotator: Annotator, segment: Segment, features: Features, clip: SegmentClip | None = None
    ) -> Usage:
        """Before annotating (a ``--dry-run``): at most two calls of the unmasked size, since a
        masked prompt is never larger; zero for offline agents or with ``include_paid`` off."""
        once = annotator.estimate(segment, features, clip)
        if not self.include_paid or not is_paid(once):
            return Usage()
        return add_usage(once, once)

    def score(
        self,
        annotator: Annotator,
        segment: Segment,
        features: Features,
        annotation: Annotation,
        clip: SegmentClip | None = None,
    ) -> FaithfulnessScore:
        row = FaithfulnessScore(annotation_id=annotation.id, agent=annotation.agent, label=annotation.primary_label)
        if annotation.status != Status.ok or annotation.primary_label is None:
            return row.model_copy(
                update={"status": Status.skipped, "error_kind": ErrorKind.invalid_input, "error": "annotation failed"}
            )
        if not annotation.evidence:
            return row.model_copy(update={"sufficiency": 0.0, "necessity": 0.0, "error": "cites no evidence"})
        only, without = masked_inputs(annotation, features, clip)
        if not self.include_paid and is_paid(self._reask_cost(annotator, segment, only, without)):
            return row.model_copy(update={"status": Status.skipped, "error": "paid agent: include_paid is off"})
        y = annotation.primary_label
        full = p_label(annotation, y)
        answers: list[Annotation] = []
        for masked_features, masked_clip in (only, without):
            answer = annotator.annotate(segment, masked_features, masked_clip)
            answers.append(answer)
            row = row.model_copy(update={"usage": add_usage(row.usage, answer.usage)})
            failure = answer.failure if answer.status != Status.ok else None
            if failure is not None and failure.kind not in MISSING_INPUT:
                break  # a budget or provider failure measured nothing: no second call after it
        if self.ledger is not None:
            self.ledger.record(f"{annotation.agent}:faithfulness", segment.id, row.usage)
        row = row.model_copy(
            update={
                "label_only_cited": answers[0].primary_label,
                "label_without_cited": answers[1].primary_label if len(answers) > 1 else None,
            }
        )
        for answer in answers:
            failure = answer.failure if answer.status != Status.ok else None
            if failure is not None and failure.kind not in MISSING_INPUT:
                return row.model_copy(
                    update={"status": Status.failed, "error_kind": failure.kind, "error": failure.message}
                )
        a_only, a_without = answers  # both ran: the loop stops early only on such a failure
        return row.model_copy(
            update={
                "sufficiency": round(kept_share(a_only, y, full), 4),
                "necessity": round(1.0 - kept_share(a_without, y, full), 4),
            }
        )


def kept_share(masked: Annotation, label: str, full: float) -> float:
    """[same label] * min(1, p_masked(y) / p_full(y)); 0 for an input-missing failure."""
    if masked.status != Status.ok or masked.primary_label != label:
        return 0.0
    if full <= 0.0:
        return 1.0  # no stated confidence to keep: label agreement alone
    return min(1.0, p_label(masked, label) / full)


def summarise(scores: Iterable[FaithfulnessScore]) -> dict[str, dict[str, float | int | None]]:
    """Per agent and over the corpus (``"all"``): n scored, n skipped/failed, mean sufficiency,
    necessity and faithfulness (None when nothing was scored)."""
    groups: dict[str, list[FaithfulnessScore]] = defaultdict(list)
    for s in scores:
        groups[s.agent].append(s)
        groups["all"].append(s)
    out: dict[str, dict[str, float | int | None]] = {}
    for agent, rows in sorted(groups.items()):
        ok = [r for r in rows if r.sufficiency is not None and r.necessity is not None]
        n = len(ok)
        out[agent] = {
            "n": n,
            "n_skipped": sum(r.status == Status.skipped for r in rows),
            "n_failed": sum(r.status == Status.failed for r in rows),
            "sufficiency": round(sum(r.sufficiency or 0.0 for r in ok) / n, 4) if n else None,
            "necessity": round(sum(r.necessity or 0.0 for r in ok) / n, 4) if n else None,
            "faithfulness": round(sum(r.faithfulness or 0.0 for r in ok) / n, 4) if n else None,
        }
    return out
