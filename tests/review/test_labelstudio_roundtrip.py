"""The review round trip against a real Label Studio server.

Export the review queue with `emoforge review export`, create a project with the generated
labelling config, import the tasks with their predictions, submit annotations through the
REST API, export them, and run `emoforge review import` on that export.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.storage.shards import read_manifest, read_rows
from tests.release.factory import make_row, write_corpus
from tests.review.labelstudio_server import VENV, LabelStudio

pytestmark = pytest.mark.slow

CONSENSUS = ["happy", "happy", "sad", "sad", "angry", "neutral"]
HUMAN = ["happy", "happy", "sad", "angry", "angry", "neutral"]
INTENSITY = [0.1, 0.3, 0.5, 0.7, 0.9, 0.2]


@pytest.fixture(scope="module")
def server(labelstudio: LabelStudio) -> LabelStudio:
    return labelstudio  # tests/review/conftest.py: one server for the review tests


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    rows = [
        make_row(f"flag{i}", 0, lab, needs_review=True, intensity=x, speaker=f"s{i}")
        for i, (lab, x) in enumerate(zip(CONSENSUS, INTENSITY, strict=True))
    ]
    rows += [make_row("flag6", 0, "sad", needs_review=True), make_row("flag7", 0, "happy", needs_review=True)]
    rows += [make_row(f"ok{i}", 0, "neutral") for i in range(8)]
    return write_corpus(str(tmp_path_factory.mktemp("corpus")), rows)


def _choices(name: str, labels: list[str]) -> dict[str, Any]:
    return {"from_name": name, "to_name": "transcript", "type": "choices", "value": {"choices": labels}}


def _validate_predictions(config: str, tasks: list[dict[str, Any]]) -> list[str]:
    """Label Studio's own validator (label-studio-sdk in the server's venv) on every prediction."""
    script = (
        "import json,sys\n"
        "from label_studio_sdk.label_interface import LabelInterface\n"
        "d=json.load(sys.stdin); li=LabelInterface(d['config']); errs=[]\n"
        "for t in d['tasks']:\n"
        "    for p in t['predictions']:\n"
        "        errs += li.validate_prediction(p, return_errors=True) or []\n"
        "print(json.dumps(errs))\n"
    )
    out = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", script],
        input=json.dumps({"config": config, "tasks": tasks}),
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_round_trip(server: LabelStudio, corpus: str, tmp_path: Path) -> None:
    runner = CliRunner()
    tasks_file = tmp_path / "tasks.json"
    res = runner.invoke(
        app, ["review", "export", corpus, str(tasks_file), "--to", "labelstudio", "--audit-fraction", "0.25"]
    )
    assert res.exit_code == 0, res.output
    assert "10 tasks (8 flagged, 2 audit)" in res.output
    tasks = json.loads(tasks_file.read_text())
    config = tasks_file.with_suffix(".xml").read_text()
    assert all(len(t["predictions"]) == 3 for t in tasks)
    assert _validate_predictions(config, tasks) == []

    # Label Studio validates the config, then every task's data against it.
    r = server.api("POST", "/api/projects", json={"title": "emoforge review", "label_config": config})
    assert r.status_code == 201, r.text
    project = r.json()["id"]
    r = server.api("POST", f"/api/projects/{project}/import", json=tasks)
    assert r.status_code == 201, r.text
    assert (r.json()["task_count"], r.json()["prediction_count"]) == (10, 30)

    r = server.api("GET", "/api/tasks", params={"project": project, "page_size": 100, "fields": "all"})
    assert r.status_code == 200, r.text
    by_row = {t["data"]["row_id"]: t for t in r.json()["tasks"]}
    assert set(by_row) == {t["data"]["row_id"] for t in tasks}
    stored = server.api("GET", "/api/predictions", params={"task": by_row["flag0-00000"]["id"]}).json()
    assert sorted(p["model_version"] for p in stored) == ["face/face-rules", "text/text-rules", "voice/voice-rules"]

    for i, (label, x) in enumerate(zip(HUMAN, INTENSITY, strict=True)):
        result = [
            _choices("emotion", [label]),
            {"from_name": "intensity", "to_name": "transcript", "type": "number", "value": {"number": x}},
        ]
        r = server.api(
            "POST",
            f"/api/tasks/{by_row[f'flag{i}-00000']['id']}/annotations/",
            json={"result": result, "lead_time": 3.0},
        )
        assert r.status_code == 201, r.text
    # a partial annotation (comment only) and a skipped task
    partial = [{"from_name": "comment", "to_name": "transcript", "type": "textarea", "value": {"text": ["unsure"]}}]
    r = server.api("POST", f"/api/tasks/{by_row['flag6-00000']['id']}/annotations/", json={"result": partial})
    assert r.status_code == 201, r.text
    r = server.api(
        "POST", f"/api/tasks/{by_row['flag7-00000']['id']}/annotations/", json={"result": [], "was_cancelled": True}
    )
    assert r.status_code == 201, r.text

    r = server.api(
        "GET", f"/api/projects/{project}/export", params={"exportType": "JSON", "download_all_tasks": "true"}
    )
    assert r.status_code == 200, r.text
    export_file = tmp_path / "export.json"
    export_file.write_bytes(r.content)

    before = {row.row_id: row for row in read_rows(corpus)}
    res = runner.invoke(app, ["review", "import", corpus, str(export_file)])
    assert res.exit_code == 0, res.output
    assert "6 human labels imported into 6 rows (0 already present) from 10 tasks" in res.output
    assert "row=flag6-00000: no_label" in res.output
    assert "row=flag7-00000: cancelled" in res.output
    assert "kappa_vs_consensus: FAIL" in res.output  # 7/9 < 0.8
    assert "icc_intensity: PASS" in res.output

    after = {row.row_id: row for row in read_rows(corpus)}
    assert set(after) == set(before)
    for i, label in enumerate(HUMAN):
        row = after[f"flag{i}-00000"]
        assert [(h.label, h.intensity, h.reviewer) for h in row.human] == [(label, INTENSITY[i], "labelstudio-user:1")]
        assert row.human[0].source.startswith("labelstudio:export.json#task=")
        # nothing else changed
        skip = {"human", "written_at"}
        assert row.model_dump(exclude=skip) == before[row.row_id].model_dump(exclude=skip)

    stats = read_manifest(corpus)["stats"]["human_agreement"]
    assert stats["rows_verified"] == 6
    # po = 5/6, pe = (2*2 + 1*2 + 2*1 + 1*1) / 36 = 1/4 -> kappa = (5/6 - 1/4) / (3/4) = 7/9
    assert stats["vs_consensus"]["kappa"] == pytest.approx(7 / 9, abs=1e-6)
    assert stats["vs_consensus"]["accuracy"] == pytest.approx(5 / 6, abs=1e-6)
    assert stats["vs_agents"]["face"]["kappa"] == pytest.approx(7 / 9, abs=1e-6)
    assert stats["intensity"]["icc"] == pytest.approx(1.0) and stats["intensity"]["spearman"] == pytest.approx(1.0)
    assert stats["passed"] == {"kappa_vs_consensus": False, "icc_intensity": True, "icc_valence": None}
    assert stats["reviewers"]["labelstudio-user:1"]["labels"] == 6

    # importing the same export again adds nothing
    res = runner.invoke(app, ["review", "import", corpus, str(export_file)])
    assert "0 human labels imported into 0 rows (6 already present)" in res.output
    assert all(len(r.human) <= 1 for r in read_rows(corpus))

    # a second export after the import does not send the verified rows out again
    again = tmp_path / "again.json"
    res = runner.invoke(app, ["review", "export", corpus, str(again), "--audit-fraction", "0.25"])
    assert res.exit_code == 0, res.output
    assert "6 rows already verified by a human: not sent again" in res.output
    sent = {t["data"]["row_id"] for t in json.loads(again.read_text())}
    assert sent.isdisjoint(f"flag{i}-00000" for i in range(6)) and {"flag6-00000", "flag7-00000"} <= sent
