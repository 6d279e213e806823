"""The review clip plays in a real Label Studio, opened in a real headless browser.

The docs/release.md recipe end to end: Label Studio serving local files, a personal access
token (JWT refresh token exchanged for a short-lived access token), `emoforge review export`
cutting each segment from the fixtures (an MP4 and an audio-only FLAC), one project per
player with a local-files storage over the media folder, then the task page: its <video> or
<audio> element must reach HAVE_ENOUGH_DATA with the clip's duration and advance when played,
and the key frames must load. A screenshot per task stays under the test's tmp_path.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.release.clip_media import FRAME_WIDTH
from emoforge.release.splits import release_label
from emoforge.storage.shards import read_rows
from tests.release.factory import human, make_row, write_corpus
from tests.review.browser import chromium_page
from tests.review.labelstudio_server import REPO, LabelStudio

pytestmark = pytest.mark.slow

MEDIA_STATE = (
    "JSON.stringify(Array.from(document.querySelectorAll('video, audio')).map(e => ({tag: e.tagName, "
    "ready: e.readyState, duration: e.duration, src: e.currentSrc, error: e.error && e.error.code})))"
)
# play() and wait for the clock to move: up to 15 s, since busy cores can stall the first frames;
# play() again if the player paused it meanwhile (Label Studio's audio player syncs the element
# with its own controls).
PLAY = (
    "(async () => { const e = document.querySelector('video, audio'); e.currentTime = 0; await e.play(); "
    "let most = 0; for (let i = 0; i < 150 && most < 0.3; i++) { await new Promise(r => setTimeout(r, 100)); "
    "most = Math.max(most, e.currentTime); if (e.paused && most < 0.3) await e.play(); } e.pause(); return most; })()"
)
IMAGES = "JSON.stringify(Array.from(document.images).map(i => [i.src, i.naturalWidth]))"


@pytest.fixture(scope="module")
def root(labelstudio_root: Path) -> Path:
    return labelstudio_root  # the server's LOCAL_FILES_DOCUMENT_ROOT (tests/review/conftest.py)


@pytest.fixture(scope="module")
def server(labelstudio: LabelStudio) -> LabelStudio:
    return labelstudio


@pytest.fixture(scope="module")
def pat(server: LabelStudio) -> str:
    """A personal access token made by the recipe's own block (a user holds one at a time)."""
    env = {**os.environ, "LS": server.url, "EMAIL": server.user, "PASSWORD": server.password}
    script = _recipe("token") + '\nprintf %s "$PAT"'
    res = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.count(".") == 2, res.stderr  # a JWT: header.payload.signature
    return res.stdout


def test_tasks_play_their_segment_in_label_studio(server: LabelStudio, pat: str, root: Path, media_dir: Path) -> None:
    rows = [
        make_row("vid", 1, "happy", needs_review=True, uri=str(media_dir / "sample_00000694.mp4")),  # 2.0-3.5 s
        make_row("jfk", 2, "sad", needs_review=True, uri=str(media_dir / "jfk.flac")),  # 4.0-5.5 s
        make_row("done", 0, "sad", needs_review=True, uri=str(media_dir / "jfk.flac"), human=[human("sad")]),
    ]
    corpus = write_corpus(str(root / "corpus"), rows)
    tasks_file = root / "review" / "tasks.json"
    serve = ["--media-url-prefix", "/data/local-files/?d=", "--media-root", str(root)]
    res = CliRunner().invoke(app, ["review", "export", corpus, str(tasks_file), *serve])
    assert res.exit_code == 0, res.output
    assert "1 rows already verified by a human: not sent again" in res.output
    assert "warning" not in res.output, res.output

    # Personal access token -> access token, as docs/release.md does it with curl.
    r = requests.post(f"{server.url}/api/token/refresh/", json={"refresh": pat}, timeout=60)
    assert r.status_code == 200, r.text
    bearer = {"Authorization": f"Bearer {r.json()['access']}"}

    def api(method: str, path: str, **kw: Any) -> Any:
        resp = requests.request(method, f"{server.url}{path}", headers=bearer, timeout=120, **kw)
        assert resp.status_code in (200, 201), f"{method} {path}: {resp.status_code} {resp.text[:500]}"
        return resp.json()

    opened: dict[str, tuple[int, int, dict[str, Any]]] = {}
    for kind, tag in (("video", "<Video"), ("audio", "<Audio")):
        path = root / "review" / f"tasks-{kind}.json"
        tasks, config = json.loads(path.read_text()), path.with_suffix(".xml").read_text()
        assert tag in config and len(tasks) == 1
        project = api("POST", "/api/projects", json={"title": f"emoforge {kind}", "label_config": config})["id"]
        api(
            "POST",
            "/api/storages/localfiles",
            json={"project": project, "path": str(root / "review" / "tasks-media"), "use_blob_urls": False},
        )
        assert api("POST", f"/api/projects/{project}/import", json=tasks)["prediction_count"] == 3
        task = api("GET", "/api/tasks", params={"project": project})["tasks"][0]
        opened[kind] = (project, task["id"], task["data"])
    assert opened["video"][2]["row_id"] == "vid-00001" and opened["audio"][2]["row_id"] == "jfk-00002"
    assert opened["audio"][2]["media"].endswith(".ogg") and opened["video"][2]["media"].endswith(".mp4")

    session = server.login()
    with chromium_page() as page:
        page.call("Network.setCookie", name="sessionid", value=session.cookies["sessionid"], url=server.url)
        for kind, (project, task_id, data) in opened.items():
            page.call("Page.navigate", url=f"{server.url}/projects/{project}/data?task={task_id}")
            state = page.wait_for(
                f"(() => {{ const s = {MEDIA_STATE}; return JSON.parse(s).some(e => e.ready >= 4) ? s : ''; }})()"
            )
            assert state, f"{kind}: no playable media element; page errors: {page.errors}"
            (media,) = json.loads(state)
            assert media["tag"] == kind.upper() and media["error"] is None
            assert media["src"].endswith(data["media"])
            assert media["duration"] == pytest.approx(1.5, abs=0.1)  # the segment, not the recording
            assert page.evaluate(PLAY, await_promise=True) > 0.3
            if kind == "video":  # the multi-image viewer shows the first key frame ("1 of 3")
                assert len(data["keyframes"]) == 3
                # Label Studio preloads it into a blob: URL; the cutter writes frames 240 px wide.
                shown = page.wait_for(f"JSON.parse({IMAGES}).some(([src, w]) => w === {FRAME_WIDTH})")
                assert shown, page.evaluate(IMAGES)
            print(f"screenshot: {page.screenshot(root / f'labelstudio-{kind}.png')}")  # after playing: a frame shows


def _recipe(*names: str) -> str:
    """The docs/release.md blocks marked ``# recipe: <name>``, in the order asked."""
    text = (REPO / "docs" / "release.md").read_text(encoding="utf-8")
    blocks = {name: body for body, name in re.findall(r"```bash\n(# recipe: (\w+)\n.*?)```", text, re.S)}
    return "set -euo pipefail\n" + "\n".join(blocks[n] for n in names)


def test_release_md_recipe_runs_as_written(server: LabelStudio, pat: str, root: Path, media_dir: Path) -> None:
    rows = [
        make_row("vid", 0, "happy", needs_review=True, uri=str(media_dir / "sample_00003358.mp4")),
        make_row("two", 1, "sad", needs_review=True, uri=str(media_dir / "two_speakers.wav")),
    ]
    corpus = write_corpus(str(root / "corpus2"), rows)
    env = {
        **os.environ,
        "LS": server.url,
        "EMAIL": server.user,
        "PASSWORD": server.password,
        "REVIEW_ROOT": str(root),  # the server's LOCAL_FILES_DOCUMENT_ROOT, as step 2 starts it
        "CORPUS": corpus,
        "PAT": pat,
    }

    def run(script: str) -> str:
        res = subprocess.run(["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
        return res.stdout + res.stderr

    out = run(_recipe("access", "export", "projects"))
    assert "tasks-video: " in out and "tasks-audio: " in out
    projects = (root / "round1" / "projects").read_text().split()
    assert len(projects) == 2
    chosen = {"vid-00000": "angry", "two-00001": "neutral"}
    for project in projects:
        (task,) = server.api("GET", "/api/tasks", params={"project": project}).json()["tasks"]
        label = chosen[task["data"]["row_id"]]
        # the clip is served to the project (its Local Storage covers the round's media folder)
        media = server.api("GET", task["data"]["media"])
        assert media.status_code == 200 and media.headers["Content-Type"] in ("video/mp4", "audio/ogg")
        result = [{"from_name": "emotion", "to_name": "transcript", "type": "choices", "value": {"choices": [label]}}]
        r = server.api("POST", f"/api/tasks/{task['id']}/annotations/", json={"result": result})
        assert r.status_code == 201, r.text

    out = run(f'ROUND="$REVIEW_ROOT/round1"\n{_recipe("access", "import")}')
    assert out.count("1 human labels imported into 1 rows") == 2, out
    assert {r.row_id: release_label(r) for r in read_rows(corpus)} == chosen
