"""What judges a segment: annotators' votes, the judge's verdicts, the jury's decision, humans."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from emoforge.storage.records.base import Provenance, Record
from emoforge.storage.records.failure import Failure, Status

Modality = Literal["face", "voice", "text", "visual", "context"]


class Cue(Record):
    """One piece of evidence an annotator cites."""

    modality: Modality = Field(description="Which modality the cue comes from.")
    cue: str = Field(description="What was observed, e.g. 'AU12 lip-corner pull'.")
    start_s: float | None = Field(default=None, description="Where (recording seconds), if cited.")
    end_s: float | None = Field(default=None, description="End of the cited span.")
    feature: str | None = Field(default=None, description="Feature key the cue refers to (AU12, f0_mean_hz).")
    value: float | None = Field(default=None, description="Feature value the annotator cited.")


class Usage(Record):
    input_tokens: int = Field(default=0, description="Prompt tokens.")
    output_tokens: int = Field(default=0, description="Completion tokens.")
    cost_usd: float = Field(default=0.0, description="Cost from the configured price table.")
    latency_s: float = Field(default=0.0, description="Wall time of the call(s).")
    calls: int = Field(default=0, description="Provider calls made (0 when cached).")
    cached: bool = Field(default=False, description="Served from the response cache.")
    attempts: int = Field(default=0, description="Attempts including re-asks and retries.")


class DomainCheck(Record):
    """How far a trained recognizer's input was from its training data (agents/recognizers/domain.py)."""

    distance: float = Field(ge=0, description="Mahalanobis distance in the training data's main subspace (~1 there).")
    residual: float = Field(ge=0, description="Energy outside that subspace over the training mean (~1 there).")
    trust: float = Field(ge=0, le=1, description="Weight of the model's own probabilities against its output prior.")
    min_trust: float = Field(ge=0, le=1, description="Trust below which an input is off-domain.")
    off_domain: bool = Field(description="trust < min_trust: unlike anything the model was trained on.")
    reference: str = Field(description="The training data the distance is measured against.")


class Annotation(Record):
    """One annotator's answer for one segment: {labels, rationale steps, evidence}."""

    id: str = Field(description="`{segment_id}-{agent}`.")
    segment_id: str = Field(description="Parent segment id.")
    agent: str = Field(description="Agent name from the config.")
    backend: str = Field(description="face_cues, voice_cues, text_cues, openai, gemini, ...")
    status: Status = Field(default=Status.ok, description="ok, or failed (then no labels).")
    failure: Failure | None = Field(default=None, description="Why the agent produced no answer.")
    labels: list[str] = Field(default_factory=list, description="Normalised labels (multi-label set).")
    primary_label: str | None = Field(default=None, description="Most prominent normalised label.")
    raw_label: str | None = Field(default=None, description="Label as the model wrote it.")
    label_scores: dict[str, float] = Field(
        default_factory=dict, description="Agent's distribution over the taxonomy, if given."
    )
    confidence: float | None = Field(default=None, ge=0, le=1, description="Agent confidence.")
    intensity: float | None = Field(default=None, ge=0, le=1, description="Emotion intensity 0..1.")
    valence: float | None = Field(default=None, ge=-1, le=1, description="Valence -1..1.")
    arousal: float | None = Field(default=None, ge=-1, le=1, description="Arousal -1..1.")
    rationale: list[str] = Field(
        default_factory=list, description="Normalised steps; each 'Step k: ...', last states the label."
    )
    raw_rationale: str | None = Field(default=None, description="Reasoning as returned.")
    evidence: list[Cue] = Field(default_factory=list, description="Cited cues per modality.")
    modalities_seen: list[str] = Field(default_factory=list, description="Modalities given to the agent.")
    usage: Usage = Field(default_factory=Usage, description="Tokens, cost, latency, cache use.")
    domain: DomainCheck | None = Field(
        default=None, description="Trained recognizers: distance of the input to their training data."
    )
    provenance: Provenance = Field(description="Model, prompt version, config hash.")

    @model_validator(mode="after")
    def _failed_has_no_label(self) -> Annotation:
        if self.status != Status.ok and (self.labels or self.primary_label):
            raise ValueError(f"annotation {self.id}: a failed annotation must not carry labels")
        if self.status != Status.ok and self.failure is None:
            raise ValueError(f"annotation {self.id}: status {self.status} needs a failure")
        return self


class Verdict(Record):
    """The judge's scores for one annotation."""

    id: str = Field(description="`{annotation_id}-{judge}`.")
    annotation_id: str = Field(description="Annotation judged.")
    judge: str = Field(description="Judge name.")
    status: Status = Field(default=Status.ok, description="failed: unparsable/failed judgement (scores 0).")
    failure: Failure | None = Field(default=None, description="Why judging failed.")
    s_rec: float = Field(ge=0, le=1, description="Recognition score.")
    s_reason: float = Field(ge=0, le=1, description="Reasoning soundness score.")
    s_cot: float = Field(ge=0, le=1, description="Multimodal chain-of-thought completeness.")
    s_final: float = Field(ge=0, le=1, description="a*s_rec + b*s_reason + c*s_cot.")
    weights: list[float] = Field(description="[a, b, c] used for s_final.")
    task: str = Field(default="default", description="Task whose weights were used.")
    notes: list[str] = Field(default_factory=list, description="Why points were lost.")
    provenance: Provenance = Field(description="Judge model and config hash.")
    # Added within schema v1 (nullable): shards written before it load with None.
    usage: Usage | None = Field(
        default=None,
        description="What this judgement spent: the LLM judge's calls (a cached one: calls 0, cached) and the "
        "faithfulness re-asks of paid annotators; null for the offline rules judge and rows written before it.",
    )


class JuryDecision(Record):
    """What the jury of one segment did and spent (phase 3, annotate; ``agents/adaptive.py``).

    The full jury asks every agent; the adaptive one asks, round by round, the vote its plan
    (``agents/policy.py``) buys next, and stops when the pooled consensus is decisive (no vote
    left is worth its price: ``agents.adaptive.objective``), when every agent has answered,
    or when the corpus budget or the segment's cap is spent.
    """

    policy: Literal["full", "adaptive"] = Field(description="agents.policy of the run that asked the jury.")
    stop: Literal["full_jury", "decisive", "exhausted", "budget", "segment_cap"] = Field(
        description="Why the jury stopped: full_jury (policy full: everyone asked), decisive (confident, and the "
        "plan buys no more votes: none left is worth its price under agents.adaptive.objective), exhausted "
        "(every agent asked), budget (corpus budget spent), segment_cap (the segment's cap reached)."
    )
    route: Literal["label", "review"] = Field(
        description="label: the consensus labels the segment; review: sent to human review (stopped by the "
        "budget or the cap while the consensus was not decisive)."
    )
    rounds: int = Field(ge=0, description="Rounds asked (the free offline agents are one round, each paid agent one).")
    asked: list[str] = Field(default_factory=list, description="Agents asked, in the order asked.")
    skipped: list[str] = Field(default_factory=list, description="Enabled agents the policy did not ask.")
    confidence: float | None = Field(
        default=None, ge=0, le=1, description="Pooled probability of the top label when the jury stopped."
    )
    calls: int = Field(default=0, ge=0, description="Provider calls made for this segment (0 when cached).")
    calls_saved: int = Field(default=0, ge=0, description="Paid calls not made: one per skipped paid agent.")
    cost_usd: float = Field(default=0.0, ge=0, description="What the segment's annotators cost.")
    saved_usd: float = Field(default=0.0, ge=0, description="Estimated cost of the skipped paid agents.")
    tokens: dict[str, int] = Field(
        default_factory=dict,
        description="Billed tokens by part: input text, image, audio and video (split by the prompt's parts "
        "at the rates of agents/costs.py, scaled to the billed input), and output.",
    )


class HumanLabel(Record):
    """A human reviewer's verification of a segment (Label Studio round trip)."""

    reviewer: str = Field(description="Reviewer id or e-mail.")
    label: str | None = Field(default=None, description="Label chosen by the reviewer.")
    labels: list[str] = Field(default_factory=list, description="Multi-label choice.")
    intensity: float | None = Field(default=None, description="Reviewer intensity 0..1.")
    valence: float | None = Field(default=None, description="Reviewer valence -1..1.")
    comment: str | None = Field(default=None, description="Free-text note.")
    reviewed_at: datetime = Field(description="When the review was submitted.")
    source: str = Field(description="Where it came from (labelstudio export file, task id).")
