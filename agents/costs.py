"""Price table, token estimates, usage totals per segment/agent/run, and a budget cap.

Token estimates are for dry runs and budget reservations, not billing: text at ~4
characters a token, a key frame at OpenAI's 'low' detail cost, and the segment's clip at
the rates each provider publishes and declares in its spec (``agents/providers.py``). Audio tokens can carry
their own price (``Price.audio_input_per_mtok``), as both providers bill them apart.

Before a paid call the annotator asks the ledger to ``reserve`` the call's estimated
cost; past the cap the reservation is refused and the annotation fails with
``budget_exceeded`` instead of spending. After the call ``settle`` replaces the estimate
with the real cost. Reservations make the cap hold under concurrent calls.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, defaultdict

from emoforge.agents.base import Prompt
from emoforge.agents.providers import provider
from emoforge.configs.agents import Price
from emoforge.storage.records import Usage

CHARS_PER_TOKEN = 4.0
IMAGE_TOKENS = 85  # OpenAI 'low' detail image; a fixed estimate for other providers too


def batch_factor(backend: str) -> float:
    """Price of a batch request relative to the same request in real time (1 without a batch API)."""
    batch = provider(backend).batch
    return batch.price_factor if batch is not None else 1.0


def batch_price(price: Price, backend: str) -> Price:
    """The agent's ``price`` as billed through its provider's batch API."""
    factor = batch_factor(backend)
    audio = None if price.audio_input_per_mtok is None else price.audio_input_per_mtok * factor
    return Price(
        input_per_mtok=price.input_per_mtok * factor,
        output_per_mtok=price.output_per_mtok * factor,
        audio_input_per_mtok=audio,
    )


def estimate_tokens(text: str, n_images: int = 0) -> int:
    """Rough token count (4 characters per token, fixed cost per image) for dry runs."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) + n_images * IMAGE_TOKENS


def media_tokens(backend: str, audio_s: float = 0.0, video_s: float = 0.0) -> tuple[int, int]:
    """(all, audio) estimated input tokens of ``audio_s`` seconds of sound and ``video_s`` of video.

    Video costs its frames at 1 fps plus its soundtrack's audio tokens; pass the soundtrack's
    length in ``audio_s``. A backend that takes no video declares no tokens per frame.
    """
    spec = provider(backend)
    audio = math.ceil(audio_s * spec.audio_tokens_per_s)
    return audio + math.ceil(video_s) * spec.video_tokens_per_frame, audio


def tokens_by_part(prompt: Prompt, backend: str, billed_input: int, billed_output: int) -> dict[str, int]:
    """A call's billed tokens by part: input ``text``, ``image``, ``audio``, ``video``, and ``output``.

    Providers bill one input total (OpenAI and Gemini report audio apart at most), so the
    input is split in the proportions the prompt's parts have at this module's rates and
    scaled to ``billed_input``; the parts sum to it exactly (the remainder goes to text).
    """
    text = prompt.system + prompt.user + str(prompt.schema) + "".join(a + b for a, b in prompt.messages_after)
    audio_s = prompt.audio.duration_s if prompt.audio is not None else 0.0
    video_s = prompt.video.duration_s if prompt.video is not None else 0.0
    _, audio = media_tokens(backend, audio_s)
    # The video's frames, and its soundtrack where it has one, are both counted as video.
    video, _ = media_tokens(backend, video_s if prompt.video is not None and prompt.video.has_audio else 0.0, video_s)
    parts = {
        "text": estimate_tokens(text),
        "image": len(prompt.images) * IMAGE_TOKENS,
        "audio": audio,
        "video": video if prompt.video is not None else 0,
    }
    total = sum(parts.values())
    out = dict.fromkeys(parts, 0)
    if billed_input > 0 and total > 0:
        for name in ("image", "audio", "video"):
            out[name] = int(billed_input * parts[name] / total)
        out["text"] = billed_input - out["image"] - out["audio"] - out["video"]
    out["output"] = billed_output
    return out


def cost_usd(price: Price, input_tokens: int, output_tokens: int, audio_input_tokens: int = 0) -> float:
    """USD of a call; ``audio_input_tokens`` (part of ``input_tokens``) at the audio rate if set."""
    audio = min(audio_input_tokens, input_tokens)
    audio_rate = price.input_per_mtok if price.audio_input_per_mtok is None else price.audio_input_per_mtok
    text = input_tokens - audio
    return (text * price.input_per_mtok + audio * audio_rate + output_tokens * price.output_per_mtok) / 1e6


def add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        cost_usd=a.cost_usd + b.cost_usd,
        latency_s=a.latency_s + b.latency_s,
        calls=a.calls + b.calls,
        cached=a.cached and b.cached,
        attempts=a.attempts + b.attempts,
    )


class BudgetExceeded(Exception):
    """The next call would pass the run's budget; no call is made."""


class CostLedger:
    """Thread-safe totals and budget; ``budget_usd=None`` means no cap."""

    def __init__(self, budget_usd: float | None = None) -> None:
        self.budget_usd = budget_usd
        self._lock = threading.Lock()
        self._spent = 0.0
        self._reserved = 0.0
        self.by_agent: dict[str, Usage] = defaultdict(lambda: Usage(cached=True))
        self.by_segment: dict[str, Usage] = defaultdict(lambda: Usage(cached=True))

    @property
    def spent_usd(self) -> float:
        return self._spent

    def left_usd(self) -> float | None:
        """Budget not yet spent or reserved (None: no cap)."""
        with self._lock:
            return None if self.budget_usd is None else max(0.0, self.budget_usd - self._spent - self._reserved)

    def reserve(self, estimate_usd: float) -> None:
        """Hold ``estimate_usd`` of the budget or raise BudgetExceeded."""
        with self._lock:
            if self.budget_usd is not None and (self._spent + self._reserved + estimate_usd > self.budget_usd):
                raise BudgetExceeded(
                    f"budget {self.budget_usd:.4f} USD: spent {self._spent:.4f}, "
                    f"reserved {self._reserved:.4f}, next call ~{estimate_usd:.4f}"
                )
            self._reserved += estimate_usd

    def settle(self, estimate_usd: float, actual_usd: float) -> None:
        with self._lock:
            self._reserved = max(0.0, self._reserved - estimate_usd)
            self._spent += actual_usd

    def record(self, agent: str, segment_id: str, usage: Usage) -> None:
        with self._lock:
            self.by_agent[agent] = add_usage(self.by_agent[agent], usage)
            self.by_segment[segment_id] = add_usage(self.by_segment[segment_id], usage)

    def total(self) -> Usage:
        with self._lock:
            out = Usage(cached=True)
            for usage in self.by_agent.values():
                out = add_usage(out, usage)
            return out


_RUN_LEDGERS: OrderedDict[tuple[str, float | None], CostLedger] = OrderedDict()
_RUN_LEDGERS_LOCK = threading.Lock()
_RUN_LEDGERS_KEPT = 32  # runs a long-lived worker remembers; older ones have finished


def run_ledger(run_id: str, budget_usd: float | None) -> CostLedger:
    """The one ledger of a run in this process: the jury and the judge spend from the same cap."""
    key = (run_id, budget_usd)
    with _RUN_LEDGERS_LOCK:
        ledger = _RUN_LEDGERS.get(key)
        if ledger is None:
            ledger = _RUN_LEDGERS[key] = CostLedger(budget_usd)
            while len(_RUN_LEDGERS) > _RUN_LEDGERS_KEPT:
                _RUN_LEDGERS.popitem(last=False)
        _RUN_LEDGERS.move_to_end(key)
        return ledger
