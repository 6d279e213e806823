"""``--dry-run`` shows realtime and batch cost side by side (flows/estimate.py), and the
config refuses batch mode where it cannot work (configs/agents.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emoforge.agents.providers import check_providers
from emoforge.configs import ConfigError, load_config
from emoforge.flows.estimate import estimate_cost
from tests.conftest import espeak


def _jury(mode: str) -> list[dict[str, object]]:
    price = {"input_per_mtok": 2.0, "output_per_mtok": 8.0}
    return [
        {"name": "voice", "backend": "voice_cues"},
        {"name": "gpt", "backend": "openai", "model": "m", "modalities": ["text"], "price": price, "mode": mode},
        {"name": "gem", "backend": "gemini", "model": "g", "modalities": ["text"], "price": price},
        {"name": "local", "backend": "openai_compatible", "model": "l", "base_url": "http://127.0.0.1:9/v1",
         "modalities": ["text"], "price": price},
    ]  # fmt: skip


def test_dry_run_shows_realtime_and_batch_cost_side_by_side(tmp_path: Path) -> None:
    wav = espeak("I can not believe it, this is wonderful news.", tmp_path / "speech.wav")
    realtime = estimate_cost([wav], load_config(None, {"agents": {"jury": _jury("realtime")}}))
    batch = estimate_cost([wav], load_config(None, {"agents": {"jury": _jury("batch")}}))
    assert realtime.segments >= 1 and realtime.calls == batch.calls == 3 * realtime.segments
    per = realtime.by_agent
    # Each paid agent costs the same in real time; openai and gemini have a batch API at half price.
    assert per["gpt"]["realtime_cost_usd"] == per["gem"]["realtime_cost_usd"] == per["local"]["realtime_cost_usd"]
    assert per["gpt"]["batch_cost_usd"] == pytest.approx(float(per["gpt"]["realtime_cost_usd"]) / 2, abs=2e-6)
    assert per["local"]["batch_cost_usd"] == per["local"]["realtime_cost_usd"]  # no batch API
    assert per["voice"]["realtime_cost_usd"] == 0.0
    one = float(per["gpt"]["realtime_cost_usd"])
    assert realtime.realtime_cost_usd == pytest.approx(3 * one, abs=5e-6)
    assert realtime.batch_cost_usd == pytest.approx(2 * one, abs=5e-6)  # gpt and gem halved
    # cost_usd follows each agent's configured mode: the batch-mode gpt at half price.
    assert realtime.cost_usd == pytest.approx(realtime.realtime_cost_usd, abs=5e-6)
    assert batch.cost_usd == pytest.approx(2.5 * one, abs=5e-6)
    assert batch.by_agent["gpt"]["mode"] == "batch" and realtime.by_agent["gpt"]["mode"] == "realtime"


def test_batch_mode_is_refused_without_a_batch_api_or_without_the_cache() -> None:
    local = {"name": "local", "backend": "openai_compatible", "model": "l", "base_url": "http://x/v1", "mode": "batch"}
    with pytest.raises(ConfigError, match="mode 'batch' needs backend gemini or openai"):
        check_providers(load_config(None, {"agents": {"jury": [local]}}))
    gpt = {"name": "gpt", "backend": "openai", "model": "m", "mode": "batch"}
    with pytest.raises(ConfigError, match=r"cache\.enabled must be true"):
        load_config(None, {"agents": {"jury": [gpt], "cache": {"enabled": False}}})
    assert load_config(None, {"agents": {"jury": [gpt]}}).agents.jury[0].mode == "batch"


def test_dry_run_prices_the_llm_judge_and_says_the_adaptive_figures_are_a_ceiling(tmp_path: Path) -> None:
    wav = espeak("I can not believe it, this is wonderful news.", tmp_path / "speech.wav")
    jury = _jury("realtime")
    plain = estimate_cost([wav], load_config(None, {"agents": {"jury": jury}}))
    judge = {
        "backend": "llm",
        "llm": {**jury[1], "name": "judge", "price": {"input_per_mtok": 4.0, "output_per_mtok": 8.0}},
    }
    judged = estimate_cost([wav], load_config(None, {"agents": {"jury": jury, "policy": "adaptive"}, "judge": judge}))
    # One judge call per annotation: four agents, so four per segment, all realtime.
    assert (plain.judge_calls, plain.judge_cost_usd, plain.policy) == (0, 0.0, "full")
    assert judged.judge_calls == 4 * judged.segments and judged.calls == plain.calls + judged.judge_calls
    assert judged.judge_cost_usd > 0 and judged.policy == "adaptive"
    assert judged.ceiling and not plain.ceiling  # the adaptive figures say they are the most it spends
    assert judged.cost_usd == pytest.approx(plain.cost_usd + judged.judge_cost_usd, abs=5e-6)
    assert judged.batch_cost_usd == pytest.approx(plain.batch_cost_usd + judged.judge_cost_usd, abs=5e-6)
    # The judge's output allowance is priced in full: at least 512 tokens x 8 USD per million per call.
    assert judged.judge_cost_usd >= judged.judge_calls * 512 * 8.0 / 1e6
