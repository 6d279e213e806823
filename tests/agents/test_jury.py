"""The Jury: the offline default jury end to end, ids, dry run, per-provider concurrency."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from emoforge.agents import jury as jury_module
from emoforge.agents.base import ModelReply, Prompt
from emoforge.agents.jury import Jury
from emoforge.configs import load_config
from emoforge.configs.agents import AgentConfig, AgentsConfig, Price, TaxonomyConfig
from emoforge.storage.records import ErrorKind, RunContext, Status
from tests.agents.conftest import make_features, make_segment
from tests.agents.test_llm_fakes import GOOD


def test_offline_default_jury_from_default_yaml(ctx: RunContext, tmp_path: Path) -> None:
    config = load_config().agents
    assert [a.backend for a in config.jury] == ["face_model", "voice_model", "text_model"]
    jury = Jury(config, ctx, cache_dir=tmp_path)
    assert jury.clip_needs.audio and not jury.clip_needs.video  # the voice model hears the segment
    seg = make_segment()
    annotations = jury.annotate(seg, make_features(seg))
    assert [a.id for a in annotations] == [f"{seg.id}-face", f"{seg.id}-voice", f"{seg.id}-text"]
    # Features without key frames or a clip: the face and voice models fail typed, text answers.
    face, voice, text = annotations
    assert face.failure is not None and face.failure.kind == ErrorKind.no_face
    assert voice.failure is not None and voice.failure.kind == ErrorKind.no_audio
    assert text.status == Status.ok and text.primary_label in config.taxonomy.labels
    assert text.rationale and text.evidence and text.provenance.config_hash == ctx.config_hash
    assert jury.estimate(seg, make_features(seg)).calls == 0  # offline models cost nothing
    jury.close()


def test_cue_agents_still_form_a_jury(ctx: RunContext, tmp_path: Path) -> None:
    config = AgentsConfig()  # the code default: the three cue agents, no model files needed
    assert [a.backend for a in config.jury] == ["face_cues", "voice_cues", "text_cues"]
    jury = Jury(config, ctx, cache_dir=tmp_path)
    seg = make_segment()
    annotations = jury.annotate(seg, make_features(seg))
    assert all(a.status == Status.ok and a.primary_label in config.taxonomy.labels for a in annotations)
    assert {a.primary_label for a in annotations} >= {"happy"}  # AU6+AU12 face, 'wonderful news' text
    no_face = jury.annotate(seg, make_features(seg, face=False))
    assert no_face[0].failure is not None and no_face[0].failure.kind == ErrorKind.no_face
    assert no_face[1].status == Status.ok and no_face[2].status == Status.ok
    jury.close()


class SlowFake:
    """A chat backend that records how many calls overlap (stands in for a provider)."""

    name = "openai_compatible"
    active = 0
    peak = 0
    lock = threading.Lock()

    def __init__(self, config: AgentConfig) -> None:
        self.config = config

    def complete(self, prompt: Prompt, max_output_tokens: int, temperature: float) -> ModelReply:
        with SlowFake.lock:
            SlowFake.active += 1
            SlowFake.peak = max(SlowFake.peak, SlowFake.active)
        time.sleep(0.05)
        with SlowFake.lock:
            SlowFake.active -= 1
        return ModelReply(text=json.dumps(GOOD), input_tokens=500, output_tokens=100)

    def close(self) -> None:
        return None


def test_per_provider_concurrency_limit_and_run_totals(
    ctx: RunContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jury_module, "make_backend", SlowFake)
    agents = [
        AgentConfig(
            name=f"llm{i}",
            backend="openai_compatible",
            model="m",
            base_url="http://x/v1",
            concurrency=2,
            price=Price(input_per_mtok=1.0, output_per_mtok=2.0),
        )
        for i in range(3)
    ]
    jury = Jury(
        AgentsConfig(jury=agents, taxonomy=TaxonomyConfig(embedding_model=None), max_workers=3), ctx, cache_dir=tmp_path
    )
    segments = [make_segment(i) for i in range(4)]
    dry = jury.estimate(segments[0], make_features(segments[0]))
    assert dry.calls == 3 and dry.output_tokens == 3 * 512 and dry.cost_usd > 0
    with ThreadPoolExecutor(max_workers=4) as pool:  # the flow's workers, on top of the jury's threads
        results = list(pool.map(lambda s: jury.annotate(s, make_features(s)), segments))
    assert SlowFake.peak == 2  # 3 agents x 4 segments in parallel, one provider limit of 2
    assert all(a.status == Status.ok for r in results for a in r)
    total = jury.usage()
    assert total.calls == 12 and total.input_tokens == 12 * 500
    assert total.cost_usd == pytest.approx(12 * (500 * 1.0 + 100 * 2.0) / 1e6)
    assert jury.ledger.by_segment[segments[0].id].calls == 3
    jury.close()
