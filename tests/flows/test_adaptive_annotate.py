"""`emoforge annotate` with `agents.policy: adaptive`, for real: espeak speech through the
whole pipeline (a temporary Prefect server, ASR, prosody), the offline cue jury, and two
OpenAI-compatible agents on a local scripted server that counts every request. The dear
agent costs more than the segment cap allows, so the policy may never call it; the cheap
one is bought only where the free votes left the label open. The calls the server counted
must be the calls the rows, the run's ledger and `inspect` report; a rerun makes none."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from emoforge.storage.records import SegmentRow
from emoforge.storage.shards import read_manifest, read_rows
from tests.agents.provider_server import ScriptedProvider
from tests.conftest import espeak

EMOFORGE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "emoforge")
TEXTS = ("I can not believe it, this is wonderful news.", "Leave me alone. I am so angry with you right now.")


@pytest.fixture()
def provider() -> Iterator[ScriptedProvider]:
    p = ScriptedProvider()
    yield p
    p.stop()


def _llm(name: str, model: str, base_url: str, price: tuple[float, float]) -> str:
    return (
        f"    - {{name: {name}, backend: openai_compatible, model: {model}, base_url: '{base_url}', "
        f"modalities: [text, voice], max_retries: 0, price: {{input_per_mtok: {price[0]}, "
        f"output_per_mtok: {price[1]}}}}}\n"
    )


def _config(tmp_path: Path, base_url: str) -> Path:
    # Config order lists the dear agent first: asking the cheap one first is the policy's doing.
    text = (
        "agents:\n  policy: adaptive\n  jury:\n"
        "    - {name: voice, backend: voice_cues}\n"
        "    - {name: text, backend: text_cues}\n"
        + _llm("dear", "m-dear", base_url, (10.0, 40.0))
        + _llm("cheap", "m-cheap", base_url, (0.1, 0.4))
        + "  adaptive: {segment_cap_usd: 0.01, accuracy: {cheap: 0.7, dear: 0.9}}\n"
        "run: {task_runner: thread, workers: 1}\n"
    )
    path = tmp_path / "adaptive.yaml"
    path.write_text(text)
    return path


def _annotate(media: Path, out: Path, config: Path) -> str:
    done = subprocess.run(
        [EMOFORGE, "annotate", str(media), "--out", str(out), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr  # the summary goes to the console (stderr)


def test_adaptive_annotate_buys_only_the_calls_it_reports(provider: ScriptedProvider, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    for i, text in enumerate(TEXTS):
        espeak(text, media / f"clip{i}.wav")
    out = tmp_path / "corpus"
    printed = _annotate(media, out, _config(tmp_path, provider.base_url))

    rows: list[SegmentRow] = [r for r in read_rows(str(out)) if r.segment is not None]
    assert rows
    assert provider.requests["m-dear"] == 0  # one dear call (~0.03 USD estimated) passes the 0.01 cap
    cheap_asked = 0
    for r in rows:
        jury = r.jury
        assert jury is not None and jury.policy == "adaptive"
        assert jury.asked[:2] == ["voice", "text"]  # the free agents answer in round 0
        assert "dear" in jury.skipped
        assert jury.stop in ("decisive", "segment_cap")
        cheap_asked += "cheap" in jury.asked
        assert jury.calls == (1 if "cheap" in jury.asked else 0)
        assert jury.calls_saved == 2 - jury.calls
        if jury.stop == "segment_cap":
            assert jury.route == "review" and r.consensus is not None and r.consensus.needs_review
            assert any(reason.startswith("jury_segment_cap") for reason in r.consensus.review_reasons)
        if jury.calls:  # the scripted server bills 1000 prompt and 200 completion tokens a call
            assert sum(v for k, v in jury.tokens.items() if k != "output") == 1000
            assert jury.tokens["output"] == 200 and jury.tokens["text"] > 0
            assert jury.cost_usd == pytest.approx((1000 * 0.1 + 200 * 0.4) / 1e6)
    assert provider.requests["m-cheap"] == cheap_asked

    # The run's ledger, in the manifest's run record, says the same.
    (run,) = read_manifest(str(out))["runs"]
    ledger = run["counts"]["ledger"]
    assert ledger["calls"] == cheap_asked and ledger["calls_saved"] == 2 * len(rows) - cheap_asked
    assert ledger["by_agent"]["cheap"]["calls"] == cheap_asked
    assert ledger["by_agent"]["dear"] == {**ledger["by_agent"]["dear"], "asked": 0, "skipped": len(rows)}
    assert ledger["by_part"].get("output", 0) == 200 * cheap_asked
    assert ledger["cost_usd"] == pytest.approx(cheap_asked * (1000 * 0.1 + 200 * 0.4) / 1e6)
    assert ledger["stops"] == {s: sum(r.jury is not None and r.jury.stop == s for r in rows) for s in ledger["stops"]}
    assert f"calls {cheap_asked} made, {2 * len(rows) - cheap_asked} saved" in printed

    info = json.loads(
        subprocess.run([EMOFORGE, "inspect", str(out), "--json"], capture_output=True, text=True, timeout=300).stdout
    )
    assert info["jury"]["calls"] == cheap_asked and info["jury"]["calls_saved"] == 2 * len(rows) - cheap_asked
