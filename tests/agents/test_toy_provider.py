"""Adding a provider is one file: a toy LLM provider declared in a temporary module (outside the
package, so it registers itself through ``register``, the one registration point) runs through
the real flow, and what it answers reaches the rows and their consensus.

Files a contributor touches to add a provider (CONTRIBUTING.md, "Add a provider"): its module
with a ``PROVIDER`` spec in ``agents/backends/`` (an LLM), ``agents/recognizers/`` or
``agents/cues/`` (offline), found there without a registration line; plus its test. A batch API
is one more file beside it (``BATCH_API``). Nothing else: the jury, configs checks, preflight,
rate limits, clips, costs, batch code, storage and consensus read the spec.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from emoforge.agents import providers as registry
from emoforge.agents.providers import provider
from emoforge.configs import ConfigError, load_config
from emoforge.flows.annotate import annotate_corpus
from emoforge.flows.estimate import estimate_cost
from emoforge.storage.records import Status
from emoforge.storage.shards import read_rows
from tests.conftest import espeak

TOY = '''
"""A toy provider: answers "fearful" when it was sent the segment's audio, else "neutral"."""

import json

from emoforge.agents.base import ModelReply
from emoforge.agents.providers import ProviderSpec, register


class ToyBackend:
    name = "toy_echo"

    def __init__(self, config):
        self.config = config

    def complete(self, prompt, max_output_tokens, temperature):
        label = "fearful" if prompt.audio is not None and prompt.audio.duration_s > 0 else "neutral"
        answer = {
            "steps": ["The voice trembles", f"Label {label}"], "evidence": [], "confidence": 0.9,
            "intensity": 0.5, "valence": -0.5, "arousal": 0.6, "refusal": None,
            "primary_label": label, "labels": [label],
        }
        return ModelReply(text=json.dumps(answer), input_tokens=120, output_tokens=40)

    def close(self):
        pass


PROVIDER = register(
    ProviderSpec(
        name=ToyBackend.name, kind="llm", chat=ToyBackend, needs_model=True,
        clip_modalities=frozenset({"audio"}), audio_tokens_per_s=25.0,
    )
)
'''


@pytest.fixture()
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "toy_provider.py").write_text(textwrap.dedent(TOY))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    registry.providers()  # the package's own providers first: the toy is added beside them
    importlib.import_module("toy_provider")
    yield "toy_echo"
    sys.modules.pop("toy_provider", None)
    registry._REGISTRY.pop("toy_echo", None)


def test_a_toy_provider_in_its_own_module_runs_through_the_flow(toy: str, tmp_path: Path) -> None:
    agent = {
        "name": "toy", "backend": toy, "model": "toy-1", "modalities": ["text", "audio"],
        "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
    }  # fmt: skip
    overrides = {
        "agents": {"jury": [agent], "taxonomy": {"embedding_model": None}, "cache": {"enabled": False}},
        "preprocess": {"face": {"enabled": False}},
    }
    (tmp_path / "in").mkdir()
    wav = espeak("Please, please do not leave me here alone in the dark.", tmp_path / "in" / "plea.wav")
    out = tmp_path / "corpus"
    annotate_corpus(inputs=[str(wav)], out=str(out), overrides=overrides)

    rows = list(read_rows(str(out)))
    assert rows and all(r.status == Status.ok for r in rows)
    for row in rows:
        [vote] = row.annotations
        # The spec's clip_modalities made the flow cut the clip and send it: the toy heard it.
        assert (vote.backend, vote.status, vote.primary_label) == (toy, Status.ok, "fearful")
        assert vote.modalities_seen == ["text", "audio"] and vote.usage.calls == 1
        assert vote.usage.cost_usd == pytest.approx((120 * 1.0 + 40 * 2.0) / 1e6)
        assert row.consensus is not None and row.consensus.primary_label == "fearful"

    # The dry run prices its clip at the toy's own audio rate (25 tokens a second).
    estimate = estimate_cost([str(wav)], load_config(overrides=overrides))
    assert estimate.by_agent["toy"]["realtime_cost_usd"] > 0 and estimate.provider_problems == []
    assert provider(toy).batch is None
    with pytest.raises(ConfigError, match="mode 'batch' needs backend gemini or openai, not 'toy_echo'"):
        registry.check_providers(load_config(overrides={"agents": {"jury": [{**agent, "mode": "batch"}]}}))
