"""Rows 3, 4, 7 and 10 of docs/security.md: predictions and corpora from someone else, given
to ``emoforge evaluate``.

Row 3: measured faithfulness trusts nothing the submitter states: the baseline is the
agent's own answer on the full input (a confidence of 1e-6 changes nothing), citing every
modality does not score 1 / 1, and non-finite or out-of-range scores are refused.
Row 4: only the answer rows are re-asked; paid re-asks need ``--budget-usd``.
Row 7: a small Parquet file declaring more rows than a predictions file may hold is refused
before it is expanded.
Row 10: malformed or deeply nested predictions are one line and exit 2, never a traceback;
a corpus whose stored config names a server or key variable is not used to send a key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.configs import PipelineConfig
from emoforge.configs.storage import StorageConfig
from emoforge.release.predictions import MAX_ITEMS
from emoforge.storage.records import SegmentRow
from emoforge.storage.shards import CorpusWriter
from tests.quality.corpus import simulated_rows, write_corpus
from tests.quality.records import CTX
from tests.release.test_evaluate_faithfulness import _honest, _write

CONFIG = "agents:\n  jury:\n    - {name: face, backend: face_cues}\n    - {name: voice, backend: voice_cues}\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SegmentRow]]:
    rows, _ = simulated_rows(n=16, seed=11)
    return write_corpus(tmp_path_factory.mktemp("faith") / "corpus", rows), rows


def _evaluate(tmp_path: Path, preds: Path, answers: list[dict[str, Any]], *extra: str) -> Any:
    gold = _write(tmp_path / "answers.jsonl", [{"row_id": a["row_id"], "label": a["label"]} for a in answers])
    return CliRunner().invoke(app, ["evaluate", str(preds), "--answers", str(gold), "--json", *extra])


def _measure(tmp_path: Path, root: Path, preds: list[dict[str, Any]], answers: list[dict[str, Any]]) -> Any:
    config = tmp_path / "jury.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    extra = ("--corpus", str(root), "--config", str(config), "--agent", "face")
    result = _evaluate(tmp_path, _write(tmp_path / "preds.jsonl", preds), answers, *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["measured"]


def test_row3_the_baseline_is_the_agents_own_answer_not_the_submitted_scores(
    corpus: tuple[Path, list[SegmentRow]], tmp_path: Path
) -> None:
    root, rows = corpus
    honest = _honest(rows)
    truth = _measure(tmp_path, root, honest, honest)
    assert truth["n_scored"] == len(honest) >= 10
    # Measured on these 16 clips: sufficiency 0.71 (the agent keeps part of its confidence
    # when shown only the cited AUs), so a tiny stated confidence would have lifted it to 1.
    assert truth["sufficiency"] < 0.9
    tiny = [p | {"confidence": 1e-6, "label_scores": {p["label"]: 1e-6}} for p in honest]
    claimed = _measure(tmp_path, root, tiny, honest)
    assert (claimed["sufficiency"], claimed["necessity"]) == (truth["sufficiency"], truth["necessity"])


def test_row3_citing_every_modality_does_not_score_one(corpus: tuple[Path, list[SegmentRow]], tmp_path: Path) -> None:
    root, rows = corpus
    honest = _honest(rows)
    everything = [
        {
            "row_id": p["row_id"],
            "label": p["label"],
            "confidence": 0.01,
            "evidence_modalities": ["face", "voice", "text"],
        }
        for p in honest
    ]
    m = _measure(tmp_path, root, everything, honest)
    assert m["n_scored"] == len(honest)
    # Shown everything it answers as before (1); of the three modalities removed one at a
    # time only the face changes its answer: necessity 1/3, not 1.
    assert m["sufficiency"] == pytest.approx(1.0)
    assert m["necessity"] == pytest.approx(1 / 3, abs=0.01)


@pytest.mark.parametrize("bad", [float("nan"), 1e300, -0.5, float("inf")])
def test_row3_non_finite_or_out_of_range_scores_are_refused(tmp_path: Path, bad: float) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"row_id": "a1", "label": "happy", "label_scores": {"happy": bad}}) + "\n")
    result = _evaluate(tmp_path, preds, [{"row_id": "a1", "label": "happy"}])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error:") and "item 0 ('a1'): label_scores.happy" in line


def test_row4_only_answer_rows_are_re_asked_and_paid_needs_a_budget(
    corpus: tuple[Path, list[SegmentRow]], tmp_path: Path
) -> None:
    root, rows = corpus
    honest = _honest(rows)
    answers = honest[:4]  # the other predicted rows stand for train/validation: public labels
    m = _measure(tmp_path, root, honest, answers)
    assert m["n_predictions"] == 4 and m["n_scored"] == 4
    config = tmp_path / "jury.yaml"
    preds = _write(tmp_path / "preds.jsonl", honest)
    extra = ("--corpus", str(root), "--config", str(config), "--agent", "face", "--include-paid")
    result = _evaluate(tmp_path, preds, answers, *extra)
    assert result.exit_code == 2
    assert result.output.strip() == "--include-paid needs --budget-usd: paid re-asks cost money per answer row"


def test_row7_a_parquet_declaring_too_many_rows_is_refused_before_expansion(tmp_path: Path) -> None:
    n = MAX_ITEMS + 100_000
    table = pa.table({"row_id": pa.repeat(pa.scalar("a1"), n), "label": pa.repeat(pa.scalar("happy"), n)})
    preds = tmp_path / "bomb.parquet"
    pq.write_table(table, preds, compression="zstd")
    assert preds.stat().st_size < 200_000  # small on disk, huge once expanded
    result = _evaluate(tmp_path, preds, [{"row_id": "a1", "label": "happy"}])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {preds}: declares {n} rows, more than the {MAX_ITEMS} a file may hold"


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ({"row_id": "a1", "label": "happy", "labels": [{}]}, "item 0 ('a1'): labels.0: Input should be a valid string"),
        ({"row_id": "a1", "label": {"x": 1}}, "item 0 ('a1'): label: Input should be a valid string"),
        ({"row_id": "../../etc/passwd", "label": "happy"}, "item 0 ('../../etc/passwd'): row_id: String should match"),
    ],
)
def test_row10_malformed_predictions_are_one_line(tmp_path: Path, item: dict[str, Any], says: str) -> None:
    preds = _write(tmp_path / "p.jsonl", [item])
    result = _evaluate(tmp_path, preds, [{"row_id": "a1", "label": "happy"}])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert says in line


def test_row10_deeply_nested_predictions_are_one_line(tmp_path: Path) -> None:
    preds = tmp_path / "p.json"
    deep = "[" * 200_000 + "]" * 200_000
    preds.write_text('[{"row_id": "a1", "label": "happy", "rationale": ' + deep + "}]", encoding="utf-8")
    result = _evaluate(tmp_path, preds, [{"row_id": "a1", "label": "happy"}])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"error: {preds}: JSON nested too deeply"
    shallow = tmp_path / "q.json"
    nested: Any = "x"
    for _ in range(40):
        nested = {"k": nested}
    shallow.write_text(json.dumps([{"row_id": "a1", "label": "happy", "extra": nested}]), encoding="utf-8")
    result = _evaluate(tmp_path, shallow, [{"row_id": "a1", "label": "happy"}])
    assert result.exit_code == 2 and "nested deeper than 16 levels" in result.output


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self) -> None:
        _Recorder.seen.append(self.headers.get("Authorization", ""))
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture()
def author_server() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_row10_a_corpus_config_naming_a_server_never_gets_the_users_key(
    tmp_path: Path, author_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER_OWN_KEY", "sk-user-secret-1")
    rows, _ = simulated_rows(n=4, seed=3)
    stored = PipelineConfig.model_validate(
        {
            "agents": {
                "jury": [
                    {"name": "face", "backend": "face_cues"},
                    {"name": "llm", "backend": "openai_compatible", "model": "m", "base_url": author_server,
                     "api_key_env": "USER_OWN_KEY", "modalities": ["face"]},
                ]
            }
        }
    )  # fmt: skip
    writer = CorpusWriter(
        str(tmp_path / "corpus"), StorageConfig(), CTX.run_id, resolved_config=stored.model_dump(mode="json")
    )
    writer.write(rows)
    writer.close()
    preds = [{"row_id": r.row_id, "label": "happy", "evidence_modalities": ["face"]} for r in rows]
    extra = ["--corpus", str(tmp_path / "corpus"), "--agent", "llm", "--include-paid", "--budget-usd", "1"]
    result = _evaluate(tmp_path, _write(tmp_path / "p.jsonl", preds), preds, *extra)
    assert result.exit_code == 2, result.output
    assert "its stored config names a server or API key variable for llm" in result.output
    assert "Traceback" not in result.output
    assert _Recorder.seen == []


def test_row7_json_lines_stop_at_the_cap_as_they_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("emoforge.release.predictions.MAX_ITEMS", 10)
    preds = _write(tmp_path / "many.jsonl", [{"row_id": f"a{i}", "label": "happy"} for i in range(25)])
    result = _evaluate(tmp_path, preds, [{"row_id": "a1", "label": "happy"}])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {preds}: more than the 10 items a file may hold (11 read)"


def test_row4_paid_re_asks_stop_at_the_budget(
    corpus: tuple[Path, list[SegmentRow]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.agents.provider_server import ScriptedProvider

    monkeypatch.setenv("EMOFORGE_TEST_KEY", "sk-test-SECRET-123")
    root, rows = corpus
    provider = ScriptedProvider(behaviour={"ok": "ok"})
    try:
        config = tmp_path / "paid.yaml"
        config.write_text(
            "agents:\n  jury:\n    - {name: llm, backend: openai_compatible, model: ok, "
            f"base_url: '{provider.base_url}', api_key_env: EMOFORGE_TEST_KEY, max_retries: 0, "
            "price: {input_per_mtok: 1000.0, output_per_mtok: 1000.0}}\n",
            encoding="utf-8",
        )
        preds = [{"row_id": r.row_id, "label": "happy", "evidence_modalities": ["face"]} for r in rows[:6]]
        extra = ("--corpus", str(root), "--config", str(config), "--agent", "llm", "--include-paid")
        result = _evaluate(tmp_path, _write(tmp_path / "p.jsonl", preds), preds, *extra, "--budget-usd", "2")
        assert result.exit_code == 0, result.output
        m = json.loads(result.output)["measured"]
        # Three calls a claim (full input, only the face, without it) would be 18; at ~1 USD a
        # call the 2 USD budget stops them, and every claim past it fails typed.
        assert m["cost_usd"] <= 2.0 and provider.requests["ok"] < 18
        assert m["failures"].get("budget_exceeded", 0) >= 1
        assert m["n_scored"] + m["n_failed"] == 6
    finally:
        provider.stop()
