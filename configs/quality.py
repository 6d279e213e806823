"""Stages 4-5 config: judge weights per task, aggregation and review thresholds."""

from typing import Literal

from pydantic import Field, field_validator, model_validator

from emoforge.configs.agents import AgentConfig
from emoforge.configs.base import Section


class JudgeWeights(Section):
    a: float = Field(0.4, ge=0, le=1, description="Weight of S_rec.")
    b: float = Field(0.3, ge=0, le=1, description="Weight of S_reason.")
    c: float = Field(0.3, ge=0, le=1, description="Weight of S_cot.")
    d: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Weight of S_faith, the faithfulness of the cited evidence (agents/faithfulness): "
        "it re-asks the annotator twice, so 0 (off) unless set; then a+b+c+d must equal 1.",
    )

    @model_validator(mode="after")
    def _sum_to_one(self) -> "JudgeWeights":
        total = self.a + self.b + self.c + self.d
        if abs(total - 1.0) > 1e-6:
            # The message keeps naming a+b+c: d is 0 unless someone turns faithfulness on.
            terms = "a+b+c" if self.d == 0 else "a+b+c+d"
            raise ValueError(f"judge weights {terms} must equal 1, got {total:.6f}")
        return self


class RulesJudgeConfig(Section):
    """Thresholds the offline judge checks rationale claims against (see agents/judge/claims.py).

    A value between the low and the high threshold makes a claim unverifiable, not wrong.
    """

    au_present: float = Field(0.3, ge=0, le=1, description="AU intensity at/above which an AU is present.")
    au_absent: float = Field(0.1, ge=0, le=1, description="AU intensity at/below which an AU is absent.")
    f0_cv_monotone: float = Field(0.08, ge=0, description="F0 sd/mean at/below which speech is monotone.")
    f0_cv_varied: float = Field(0.15, ge=0, description="F0 sd/mean at/above which pitch is varied.")
    quiet_db: float = Field(55.0, description="Mean intensity (dB) at/below which speech is quiet.")
    loud_db: float = Field(70.0, description="Mean intensity (dB) at/above which speech is loud.")
    slow_wps: float = Field(2.0, ge=0, description="Words/s at/below which speech is slow.")
    fast_wps: float = Field(3.0, ge=0, description="Words/s at/above which speech is fast.")
    slope_hz_s: float = Field(5.0, ge=0, description="|F0 slope| (Hz/s) that makes pitch rising/falling.")
    unverifiable_step: float = Field(
        0.5, ge=0, le=1, description="S_reason credit of a step with no checkable claim (vague, not wrong)."
    )
    time_tolerance_s: float = Field(0.5, ge=0, description="Slack when checking a cue's cited times.")
    value_tolerance: float = Field(
        0.25, ge=0, description="Relative error allowed between a cue's cited value and the feature."
    )
    peer_weight: float = Field(
        0.5, ge=0, le=1, description="S_rec without a reference: peer_weight*peers + (1-peer_weight)*AUs."
    )

    @model_validator(mode="after")
    def _ordered(self) -> "RulesJudgeConfig":
        pairs = {
            "au_absent < au_present": self.au_absent < self.au_present,
            "f0_cv_monotone < f0_cv_varied": self.f0_cv_monotone < self.f0_cv_varied,
            "quiet_db < loud_db": self.quiet_db < self.loud_db,
            "slow_wps < fast_wps": self.slow_wps < self.fast_wps,
        }
        bad = [name for name, ok in pairs.items() if not ok]
        if bad:
            raise ValueError(f"judge.rules thresholds must satisfy {bad}")
        return self


class JudgeConfig(Section):
    name: str = "judge"
    backend: Literal["rules", "llm"] = "rules"
    agent: str | None = Field(None, description="Agent (from agents.jury) used as LLM judge.")
    llm: AgentConfig | None = Field(
        None, description="Inline agent config of the LLM judge (backend llm); wins over `agent`."
    )
    prompt_version: str = Field(
        "judge-v2", description="Version of the LLM judge instructions (v2: the case inside a <data> guard)."
    )
    task: str = Field("default", description="Which entry of `weights` applies to this corpus.")
    weights: dict[str, JudgeWeights] = Field(
        default_factory=lambda: {"default": JudgeWeights()}, description="Task name -> S_final weights."
    )
    rules: RulesJudgeConfig = RulesJudgeConfig()
    faithfulness_paid: bool = Field(
        False,
        description="With weight d > 0, also re-ask paid (LLM) annotators for S_faith: two more calls per "
        "annotation, from the run's budget (`--dry-run` shows them). Off: only offline agents are re-asked.",
    )

    @model_validator(mode="after")
    def _task_known(self) -> "JudgeConfig":
        if self.task not in self.weights:
            raise ValueError(f"judge.task {self.task!r} has no entry in judge.weights")
        return self

    @property
    def faithfulness_on(self) -> bool:
        """Whether this corpus's task weighs S_faith, so the judge re-asks annotators."""
        return self.weights[self.task].d > 0


class ReviewFlagsConfig(Section):
    """When the consensus flags a segment for human review (`aggregation.review`). The human
    review workflow itself (Label Studio, agreement thresholds) is `release.review`."""

    min_confidence: float = Field(0.5, ge=0, le=1, description="Flag when P(primary label) is below this.")
    min_agreement: float = Field(0.5, ge=0, le=1, description="Flag below this vote share.")
    min_judge_score: float = Field(0.4, ge=0, le=1, description="Flag below this mean S_final.")
    min_valid_annotations: int = Field(2, ge=1, description="Flag when fewer annotations succeeded.")
    flag_modality_conflict: bool = Field(True, description="Flag opposite valence across modalities.")
    conflict_min_valence: float = Field(
        0.25, ge=0, le=1, description="|valence| each side needs for a modality conflict."
    )
    flag_off_domain: bool = Field(
        True,
        description="Flag when the label rests only on trained recognizers whose input was unlike their training "
        "data (domain check: trust below min_trust); their votes already lean on their priors.",
    )


class AggregationConfig(Section):
    # The two aggregator keys take plain names: the aggregators declare themselves in
    # emoforge/quality/aggregation (above this layer), whose check_aggregators rejects a wrong one.
    method: str = Field(
        "pooled",
        description="Per-segment aggregator: the name of one that runs per segment (each in "
        "emoforge/quality/aggregation declares where it runs). The default, pooled, is the product of the "
        "agents' calibrated votes (each its confidence on its label, the rest uniform; "
        "emoforge/quality/aggregation/pooled.py). Corpus-level aggregators run in `emoforge aggregate`.",
    )
    judge_discount: Literal["uncalibrated", "all", "none"] = Field(
        "uncalibrated",
        description="pooled/soft: multiply a vote's confidence by the judge's S_final, so a rationale the "
        "features contradict counts for less. uncalibrated = only agents whose confidence is not a calibrated "
        "probability (LLM and cue agents; the trained recognizers' is, and on RAVDESS the judge's S_final "
        "does not separate their right from wrong answers: AUROC 0.49 vs 0.78 for their own confidence); "
        "all; none. true/false mean all/none.",
    )
    reference_prior: Literal["uniform", "jury"] = Field(
        "uniform",
        description="pooled: the prior the votes update. uniform = every label alike (the corpus's own label "
        "distribution is unknown while it is being built); jury = geometric mean of the voters' output priors "
        "(one vote then keeps exactly its own confidence; on RAVDESS it lets the text model's TV-dialogue "
        "neutral rate back in: 0.656 accuracy vs 0.736).",
    )
    pool_weights: dict[str, float] = Field(
        default_factory=dict,
        description="pooled: agent name -> exponent on its vote (default 1). `emoforge aggregate --fit-weights` "
        "fits them on human-labelled segments and prints the YAML to paste here.",
    )
    missing_confidence: float = Field(0.5, ge=0, le=1, description="Confidence of a vote whose annotator stated none.")
    corpus_methods: list[str] = Field(
        ["majority", "weighted", "dawid_skene", "mace"],
        description="Aggregators `emoforge aggregate` runs: names of ones that run per corpus. The default is a "
        "choice, not the registry: a new corpus aggregator runs once named here.",
    )
    min_label_share: float = Field(
        0.34, ge=0, le=1, description="A label joins the multi-label set at this share of (weighted) votes."
    )
    min_weight: float = Field(
        0.0, ge=0, le=1, description="Floor on a vote's judge weight (0: worthless votes count nothing)."
    )
    review: ReviewFlagsConfig = ReviewFlagsConfig()

    @field_validator("judge_discount", mode="before")
    @classmethod
    def _discount_from_bool(cls, value: object) -> object:
        if isinstance(value, bool):
            return "all" if value else "none"
        return value
