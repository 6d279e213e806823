"""One Annotator over any ChatBackend: prompt, cache, budget, retries, re-asks, parsing.

Order of a call: render the versioned prompt -> cache lookup (a hit makes no call) ->
reserve the estimated cost (refused past the budget: ``budget_exceeded``) -> call under
the provider's concurrency limit with retry/backoff on 429/5xx/timeouts -> validate
against the taxonomy's output model, re-asking with the validation error at most
``max_reasks`` times -> normalise labels and rationale -> Annotation. Final model answers
(valid, refused, or still invalid after the re-asks) are cached, so a rerun of the same
segments makes zero provider calls. An agent in ``mode: batch`` is asked through ``deferred``
instead: the same prompt and cache lookup, but a cache miss comes back as a ``BatchAsk`` for
agents/batch.py to send in a provider batch (no re-asks there: ``batch_entry``).

Agents with the ``audio`` / ``video`` modality also get the segment's clip (``SegmentClip``):
the WAV as an audio part, the MP4 as a video part (which parts: ``clips.clip_parts``). A
clip part the segment lacks (no audio stream, no frames in the span) follows ``on_missing_media``:
``annotate`` goes on with the other modalities, and ``modalities_seen`` and the prompt's
modality list leave it out; ``fail`` returns a failed annotation (``no_audio`` /
``no_video``) without a call. With nothing left to show, the failure names the missing part.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from emoforge.agents.backends.retry import RetryOutcome, RetryPolicy, budgeted_call
from emoforge.agents.base import AnnotatorError, ChatBackend, ModelReply, Prompt, SegmentClip
from emoforge.agents.cache import ResponseCache, cache_key
from emoforge.agents.clips import ClipParts, clip_parts
from emoforge.agents.costs import CostLedger, cost_usd, estimate_tokens, media_tokens
from emoforge.agents.labels import LabelNormalizer
from emoforge.agents.prompts import evidence_data, load_template, render
from emoforge.agents.rationale import normalise_steps
from emoforge.agents.schemas import (
    EmotionOutputBase,
    OutputError,
    Refusal,
    json_schema,
    output_model,
    parse_output,
)
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.storage.records import (
    Annotation,
    Cue,
    ErrorKind,
    Failure,
    Features,
    RunContext,
    Segment,
    Status,
    Usage,
)
from emoforge.storage.secrets import scrub, scrubbed_logger

# Provider error text can quote the key it was sent: scrubbed before any handler sees it.
log = scrubbed_logger(__name__)

# Feature keys a model may cite in a cue ('AU12 lip corner pull', 'f0_mean_hz 210'): kept
# in Cue.feature so the judge can check the citation against the measured features.
_FEATURE = re.compile(r"\b(AU\d{1,2}|f0_[a-z_]+|intensity_[a-z_]+|speech_rate_wps|hnr_db|jitter_local|shimmer_local)\b")


@dataclass(frozen=True)
class BatchAsk:
    """A request a batch-mode agent needs answered (``LLMAnnotator.deferred``; agents/batch.py).

    ``custom_id`` ('{annotation_id}:{cache_key[:16]}') is the provider-side request id: the
    same segment, agent and prompt always give the same id, so a request already in a batch
    is found again instead of being sent twice.
    """

    segment: Segment
    agent: str
    annotation_id: str
    custom_id: str
    cache_key: str
    prompt: Prompt
    seen: list[str]
    estimate_usd: float  # at the realtime price


class LLMAnnotator:
    """An agent backed by a chat model; see the module docstring for the call sequence."""

    def __init__(
        self,
        config: AgentConfig,
        backend: ChatBackend,
        ctx: RunContext,
        taxonomy: TaxonomyConfig,
        normalizer: LabelNormalizer,
        ledger: CostLedger,
        cache: ResponseCache | None = None,
        limiter: threading.Semaphore | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.backend: str = config.backend
        self._chat = backend
        self.ctx = ctx
        self.taxonomy = taxonomy
        self.normalizer = normalizer
        self.ledger = ledger
        self.cache = cache
        self.limiter = limiter or threading.Semaphore(config.concurrency)
        self.retry_policy = retry_policy or RetryPolicy(
            max_retries=config.max_retries, base_s=config.backoff_base_s, max_s=config.backoff_max_s
        )
        self.template = load_template(config.prompt_version)
        self.output_model = output_model(tuple(taxonomy.labels), taxonomy.open_vocabulary)
        self.schema = json_schema(self.output_model)

    # ------------------------------------------------------------------ helpers

    def _prompt(self, segment: Segment, features: Features, parts: ClipParts | None = None) -> Prompt:
        parts = parts or ClipParts()
        labels = list(self.taxonomy.labels)
        if self.taxonomy.open_vocabulary:
            labels.append("or one other emotion word if none of these fits")
        missing = parts.missing_modalities
        given: list[str] = [m for m in self.config.modalities if m not in missing]
        return render(
            self.template,
            segment,
            features,
            given,
            labels,
            self.config.max_keyframes,
            self.schema,
            audio=parts.audio,
            video=parts.video,
        )

    def _key(self, prompt: Prompt) -> str:
        return cache_key(
            agent=self.name,
            backend=self.backend,
            model=self.config.model or "",
            base_url=self.config.base_url,
            prompt_version=self.config.prompt_version,
            template_sha256=self.template.sha256,
            prompt=prompt,
            params={
                "temperature": self.config.temperature,
                "max_output_tokens": self.config.max_output_tokens,
                "max_reasks": self.config.max_reasks,
                "response_format": self.config.response_format,
            },
        )

    def _estimate_call(self, prompt: Prompt, audio_s: float = 0.0, video_s: float = 0.0) -> tuple[int, int, float]:
        """(input, output tokens, USD) of one call; ``audio_s``/``video_s`` add clip seconds
        not in the prompt (a dry run has no clip yet)."""
        text = prompt.system + prompt.user + str(prompt.schema)
        text += "".join(a + b for a, b in prompt.messages_after)
        if prompt.audio is not None:
            audio_s += prompt.audio.duration_s
        if prompt.video is not None:
            video_s += prompt.video.duration_s
            audio_s += prompt.video.duration_s if prompt.video.has_audio else 0.0
        media, audio = media_tokens(self.backend, audio_s, video_s)
        tokens_in = estimate_tokens(text, len(prompt.images)) + media
        tokens_out = self.config.max_output_tokens  # upper bound: the cap must hold
        return tokens_in, tokens_out, cost_usd(self.config.price, tokens_in, tokens_out, audio)

    def _seen(self, features: Features, prompt: Prompt, parts: ClipParts) -> list[str]:
        data = evidence_data(features, list(self.config.modalities))
        seen = [m if m != "transcript" else "text" for m, v in data.items() if not isinstance(v, str)]
        if prompt.images:
            seen.append("visual")
        return seen + parts.seen

    def _failed(self, segment: Segment, kind: ErrorKind, message: str, usage: Usage, **extra: Any) -> Annotation:
        return Annotation(
            id=f"{segment.id}-{self.name}",
            segment_id=segment.id,
            agent=self.name,
            backend=self.backend,
            status=Status.failed,
            failure=Failure(stage="annotate", kind=kind, message=scrub(message)[:500]),
            usage=usage,
            modalities_seen=extra.pop("modalities_seen", []),
            provenance=self.ctx.provenance("annotate", self.config.model, self.config.prompt_version),
            **extra,
        )

    # ------------------------------------------------------------------ protocol

    def estimate(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Usage:
        """Without a clip (a dry run cuts none) the clip modalities are counted at the segment's length."""
        parts = clip_parts(list(self.config.modalities), self.backend, clip) if clip is not None else ClipParts()
        prompt = self._prompt(segment, features, parts)
        if self.cache is not None and self.cache.get(self._key(prompt)) is not None:
            return Usage(cached=True)
        audio_s = video_s = 0.0
        if clip is None:
            video_s = segment.duration_s if "video" in self.config.modalities else 0.0
            audio_s = segment.duration_s if "audio" in self.config.modalities or video_s else 0.0
        tokens_in, tokens_out, cost = self._estimate_call(prompt, audio_s, video_s)
        return Usage(input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=cost, calls=1, attempts=1)

    def _prepared(
        self, segment: Segment, features: Features, clip: SegmentClip | None
    ) -> Annotation | tuple[Prompt, list[str], str]:
        """The annotation when no call is needed (missing media, a cache hit), else (prompt, seen, cache key)."""
        parts = clip_parts(list(self.config.modalities), self.backend, clip)
        prompt = self._prompt(segment, features, parts)
        seen = self._seen(features, prompt, parts)
        if parts.missing and (self.config.on_missing_media == "fail" or not seen):
            kind = parts.missing[0][0]
            return self._failed(segment, kind, "; ".join(m for _, m in parts.missing), Usage(), modalities_seen=seen)
        if not seen:
            return self._failed(
                segment,
                ErrorKind.invalid_input,
                f"no usable evidence for modalities {list(self.config.modalities)}",
                Usage(),
            )
        key = self._key(prompt)
        entry = self.cache.get(key) if self.cache is not None else None
        if entry is not None:
            return self._from_entry(segment, entry, Usage(cached=True), seen)
        return prompt, seen, key

    def annotate(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Annotation:
        prepared = self._prepared(segment, features, clip)
        if isinstance(prepared, Annotation):
            return prepared
        prompt, seen, key = prepared
        usage = Usage()
        answer = self._ask(prompt, usage)
        if isinstance(answer, AnnotatorError):
            return self._failed(segment, answer.kind, str(answer), usage, modalities_seen=seen)
        if self.cache is not None:
            self.cache.put(key, answer)
        return self._from_entry(segment, answer, usage, seen)

    def prompt_for(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Prompt:
        """The first prompt ``annotate`` sends for this segment (the cost ledger splits its tokens by part)."""
        return self._prompt(segment, features, clip_parts(list(self.config.modalities), self.backend, clip))

    def deferred(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Annotation | BatchAsk:
        """``annotate`` for a batch: the annotation when no call is needed, else the request to batch."""
        prepared = self._prepared(segment, features, clip)
        if isinstance(prepared, Annotation):
            return prepared
        prompt, seen, key = prepared
        annotation_id = f"{segment.id}-{self.name}"
        _, _, estimate = self._estimate_call(prompt)
        return BatchAsk(segment, self.name, annotation_id, f"{annotation_id}:{key[:16]}", key, prompt, seen, estimate)

    def batch_entry(self, reply: ModelReply) -> dict[str, Any]:
        """The cacheable final answer of one batch line: a batch has no re-ask round (that
        would be another batch, another day), so an invalid answer is final at once."""
        if reply.refusal:
            return {"text": reply.text, "refusal": reply.refusal, "error": None}
        try:
            parse_output(reply.text, self.output_model)
        except OutputError as exc:
            return {"text": reply.text, "refusal": None, "error": f"batch answer (no re-ask in batch mode): {exc}"}
        return {"text": reply.text, "refusal": None, "error": None}

    def from_batch(self, ask: BatchAsk, entry: dict[str, Any], usage: Usage) -> Annotation:
        """The annotation of a collected batch answer (``entry`` as ``batch_entry`` made it)."""
        return self._from_entry(ask.segment, entry, usage, ask.seen)

    def batch_failed(self, ask: BatchAsk, failure: Failure) -> Annotation:
        """A failed annotation for a batch line that did not answer (expired, cancelled, an error line)."""
        return self._failed(ask.segment, failure.kind, failure.message, Usage(), modalities_seen=ask.seen)

    @property
    def chat(self) -> ChatBackend:
        return self._chat

    def close(self) -> None:
        self._chat.close()

    # ------------------------------------------------------------------ calling

    def _call(self, prompt: Prompt, usage: Usage) -> ModelReply:
        _, _, estimate = self._estimate_call(prompt)
        reply, _ = budgeted_call(
            lambda: self._chat.complete(prompt, self.config.max_output_tokens, self.config.temperature),
            ledger=self.ledger,
            price=self.config.price,
            estimate_usd=estimate,
            limiter=self.limiter,
            policy=self.retry_policy,
            outcome=RetryOutcome(),
            usage=usage,
        )
        return reply

    def _ask(self, prompt: Prompt, usage: Usage) -> dict[str, Any] | AnnotatorError:
        """A cacheable final answer: {'text', 'refusal', 'error'}; or a typed provider failure."""
        last_error = ""
        last_text = ""
        for _ in range(self.config.max_reasks + 1):
            try:
                reply = self._call(prompt, usage)
            except AnnotatorError as exc:
                return exc
            if reply.refusal:
                return {"text": reply.text, "refusal": reply.refusal, "error": None}
            try:
                parse_output(reply.text, self.output_model)
            except OutputError as exc:
                last_error, last_text = str(exc), reply.text
                log.info("agent %s: invalid output, re-asking: %s", self.name, last_error)
                prompt = prompt.with_reask(reply.text, last_error)
                continue
            return {"text": reply.text, "refusal": None, "error": None}
        return {"text": last_text, "refusal": None, "error": last_error}

    # ------------------------------------------------------------------ building records

    def _from_entry(self, segment: Segment, entry: dict[str, Any], usage: Usage, seen: list[str]) -> Annotation:
        if entry.get("refusal"):
            return self._failed(
                segment,
                ErrorKind.refusal,
                f"model refused: {entry['refusal']}",
                usage,
                modalities_seen=seen,
                raw_rationale=entry.get("text") or None,
            )
        if entry.get("error"):
            return self._failed(
                segment,
                ErrorKind.malformed_output,
                f"invalid after {self.config.max_reasks} re-asks: {entry['error']}",
                usage,
                modalities_seen=seen,
                raw_rationale=(entry.get("text") or "")[:2000] or None,
            )
        parsed = parse_output(entry["text"], self.output_model)
        if isinstance(parsed, Refusal):
            return self._failed(
                segment, ErrorKind.refusal, f"model refused: {parsed.reason}", usage, modalities_seen=seen
            )
        return self._annotation(segment, parsed, entry["text"], usage, seen)

    def _annotation(
        self, segment: Segment, out: EmotionOutputBase, text: str, usage: Usage, seen: list[str]
    ) -> Annotation:
        raw_primary = str(out.primary_label)
        primary = self.normalizer.normalise(raw_primary)
        if primary.label is None:
            return self._failed(
                segment,
                ErrorKind.malformed_output,
                f"label {raw_primary!r} is not in the taxonomy",
                usage,
                modalities_seen=seen,
                raw_label=raw_primary,
                raw_rationale=text[:2000],
            )
        labels = [primary.label]
        for raw in out.labels:
            match = self.normalizer.normalise(str(raw))
            if match.label is not None and match.label not in labels:
                labels.append(match.label)
        evidence = []
        for c in out.evidence:
            found = _FEATURE.search(c.cue)
            feature = found.group(1) if found else None
            evidence.append(Cue(modality=c.modality, cue=c.cue, start_s=c.start_s, end_s=c.end_s, feature=feature))
        return Annotation(
            id=f"{segment.id}-{self.name}",
            segment_id=segment.id,
            agent=self.name,
            backend=self.backend,
            labels=labels,
            primary_label=primary.label,
            raw_label=raw_primary,
            confidence=out.confidence,
            intensity=out.intensity,
            valence=out.valence,
            arousal=out.arousal,
            rationale=normalise_steps(out.steps, primary.label),
            raw_rationale="\n".join(out.steps),
            evidence=evidence,
            modalities_seen=seen,
            usage=usage,
            provenance=self.ctx.provenance("annotate", self.config.model, self.config.prompt_version),
        )
