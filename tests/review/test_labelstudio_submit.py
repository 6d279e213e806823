"""A reviewer submits a task as it was prefilled, in a real Label Studio, in a real browser.

Label Studio's editor starts the first annotation from a prediction, and its Number fields are
HTML number inputs with ``step="0.1"``: Chromium refuses to submit a value off that grid
(``Number "-0.29" is not valid: The two nearest valid values are -0.3 and -0.2``). The jury's
valence and intensity carry more digits than that (-0.29, 0.002), so the export rounds the
prefilled numbers to the step. Here a task whose annotators said valence -0.29 and intensity
0.002 is opened, Submit is clicked as it stands, and the annotation must reach the server and
come back through `emoforge review import`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.storage.shards import read_rows
from tests.release.factory import make_row, write_corpus
from tests.review.browser import chromium_page
from tests.review.labelstudio_server import LabelStudio

pytestmark = pytest.mark.slow

# Click the editor's Submit button once it is there; report what the page said if it is not.
CLICK_SUBMIT = (
    "(() => { const b = Array.from(document.querySelectorAll('button'))"
    ".find(e => e.textContent.trim() === 'Submit' && !e.disabled); if (!b) return false; b.click(); return true; })()"
)
NUMBERS = (
    "JSON.stringify(Array.from(document.querySelectorAll('input[type=number]'))"
    ".map(e => [e.name, e.value, e.validationMessage]))"
)


def test_prefilled_task_submits_and_imports(labelstudio: LabelStudio, labelstudio_root: Path, media_dir: Path) -> None:
    root = labelstudio_root
    row = make_row("pre", 1, "sad", needs_review=True, valence=-0.29, intensity=0.002, uri=str(media_dir / "jfk.flac"))
    corpus = write_corpus(str(root / "corpus-submit"), [row])
    tasks_file = root / "submit" / "tasks.json"
    serve = ["--media-url-prefix", "/data/local-files/?d=", "--media-root", str(root)]
    res = CliRunner().invoke(app, ["review", "export", corpus, str(tasks_file), *serve])
    assert res.exit_code == 0, res.output
    (task,) = json.loads(tasks_file.read_text())
    numbers = {r["from_name"]: r["value"]["number"] for r in task["predictions"][0]["result"] if r["type"] == "number"}
    assert numbers == {"intensity": 0.0, "valence": -0.3}

    def api(method: str, path: str, **kw: Any) -> Any:
        resp = labelstudio.api(method, path, **kw)
        assert resp.status_code in (200, 201), f"{method} {path}: {resp.status_code} {resp.text[:500]}"
        return resp.json()

    config = tasks_file.with_suffix(".xml").read_text()
    project = api("POST", "/api/projects", json={"title": "emoforge submit", "label_config": config})["id"]
    media = str(root / "submit" / "tasks-media")
    api("POST", "/api/storages/localfiles", json={"project": project, "path": media, "use_blob_urls": False})
    api("POST", f"/api/projects/{project}/import", json=[task])
    (stored,) = api("GET", "/api/tasks", params={"project": project})["tasks"]

    session = labelstudio.login()
    with chromium_page() as page:
        page.call("Network.setCookie", name="sessionid", value=session.cookies["sessionid"], url=labelstudio.url)
        page.call("Page.navigate", url=f"{labelstudio.url}/projects/{project}/data?task={stored['id']}")
        # the editor has loaded the prediction into the first annotation: its valence is shown
        shown = page.wait_for(f"(() => {{ const s = {NUMBERS}; return s.includes('-0.3') ? s : ''; }})()")
        assert shown, f"prediction not prefilled: {page.evaluate(NUMBERS)}; page errors: {page.errors}"
        assert page.wait_for(CLICK_SUBMIT), "no Submit button"
        saved: list[Any] = []
        deadline = time.monotonic() + 60
        while not saved and time.monotonic() < deadline:
            time.sleep(1)
            saved = api("GET", f"/api/tasks/{stored['id']}/annotations/")
        assert len(saved) == 1, f"Submit did not save: {page.evaluate(NUMBERS)}; page errors: {page.errors}"

    export = api("GET", f"/api/projects/{project}/export", params={"exportType": "JSON", "download_all_tasks": "true"})
    export_file = root / "submit" / "export.json"
    export_file.write_text(json.dumps(export))
    res = CliRunner().invoke(app, ["review", "import", corpus, str(export_file)])
    assert res.exit_code == 0, res.output
    assert "1 human labels imported into 1 rows" in res.output, res.output
    (after,) = read_rows(corpus)
    assert [(h.label, h.valence, h.intensity) for h in after.human] == [("sad", -0.3, 0.0)]
