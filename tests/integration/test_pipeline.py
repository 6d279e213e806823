"""Issue 2's done-criteria: the real pipeline on the real fixtures, and kill -9 + resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jiwer
import pytest

from emoforge.flows.annotate import annotate_corpus
from emoforge.storage.records import SegmentRow, Status
from emoforge.storage.shards import read_manifest, read_rows, read_table, verify
from tests.conftest import JFK_TRANSCRIPT, MER_CLIPS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SegmentRow]]:
    out = tmp_path_factory.mktemp("corpus")
    inputs = [str(media_dir / "jfk.flac"), *(str(media_dir / c) for c in MER_CLIPS)]
    summary = annotate_corpus(inputs=inputs, out=str(out))
    assert summary.recordings == 4
    return out, list(read_rows(str(out)))


def test_jfk_transcript_wer(corpus: tuple[Path, list[SegmentRow]]) -> None:
    _, rows = corpus
    jfk = sorted((r for r in rows if r.recording.uri.endswith("jfk.flac")), key=lambda r: r.segment.index)  # type: ignore[union-attr]
    assert jfk and all(r.status == Status.ok for r in jfk)
    hyp = " ".join(r.features.transcript.text for r in jfk if r.features and r.features.transcript)
    ref_words = re.sub(r"[^a-z' ]", " ", JFK_TRANSCRIPT.lower())
    hyp_words = re.sub(r"[^a-z' ]", " ", hyp.lower())
    assert jiwer.wer(" ".join(ref_words.split()), " ".join(hyp_words.split())) <= 0.10


def test_prosody_faces_annotations_verdicts_consensus(corpus: tuple[Path, list[SegmentRow]]) -> None:
    _, rows = corpus
    ok = [r for r in rows if r.status == Status.ok]
    assert ok, [r.failure for r in rows]
    for row in ok:
        assert row.features is not None
        assert len([a for a in row.annotations if a.status == Status.ok]) >= 2, row.row_id
        assert len(row.verdicts) == len(row.annotations)
        assert row.consensus is not None and row.consensus.primary_label
        assert 0 < row.consensus.confidence <= 1
        for a in row.annotations:
            assert a.provenance.config_hash == row.config_hash
            if a.status == Status.ok:
                assert a.rationale and a.rationale[0].startswith("Step 1")
    jfk = [r for r in ok if r.recording.uri.endswith("jfk.flac")]
    f0 = [r.features.prosody.f0_mean_hz for r in jfk if r.features and r.features.prosody]
    assert f0 and all(f is not None and 120 < f < 350 for f in f0)
    for clip in MER_CLIPS:
        clip_rows = [r for r in ok if r.recording.uri.endswith(clip)]
        assert clip_rows, clip
        faces = [r.features.face for r in clip_rows if r.features and r.features.face]
        assert faces and sum(f.frames_with_face for f in faces) / sum(f.frames_sampled for f in faces) >= 0.9


def test_manifest_records_run_and_config(corpus: tuple[Path, list[SegmentRow]]) -> None:
    out, rows = corpus
    m = read_manifest(str(out))
    assert m["runs"][-1]["status"] == "finished"
    assert m["runs"][-1]["config"]["name"] == "offline-default"
    assert sum(s["rows"] for s in m["shards"]) == len(rows)
    assert verify(str(out)) == []


def test_rerun_writes_nothing_new(corpus: tuple[Path, list[SegmentRow]], media_dir: Path) -> None:
    out, rows = corpus
    shards_before = read_manifest(str(out))["shards"]
    summary = annotate_corpus(
        inputs=[str(media_dir / "jfk.flac"), *(str(media_dir / c) for c in MER_CLIPS)], out=str(out)
    )
    assert summary.rows_written == 0 and summary.rows_skipped == len(rows)
    assert read_manifest(str(out))["shards"] == shards_before


def test_bad_inputs_become_typed_failure_rows(tmp_path: Path, corrupt_media: Path, silent_video: Path) -> None:
    out = tmp_path / "c"
    annotate_corpus(inputs=[str(corrupt_media), str(silent_video)], out=str(out))
    rows = {r.recording.uri: r for r in read_rows(str(out))}
    bad = rows[str(corrupt_media.resolve())]
    assert bad.status == Status.failed and bad.failure is not None
    assert bad.failure.kind.value in {"corrupt_media", "unsupported_media"}
    assert bad.annotations == [] and bad.consensus is None
    assert str(silent_video.resolve()) in rows  # a video with no audio is still processed


def test_a_phase_task_that_fails_becomes_failure_rows_and_the_run_goes_on(
    media_dir: Path, tmp_path: Path, silent_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error that escapes a phase's own failure capture (a bug, here) fails the task past
    its retries: the recording gets failure rows naming the phase, the next one still runs."""
    from emoforge.flows.phases import preprocess

    calls: list[int] = []
    real = preprocess.clip_needs

    def clip_needs(agents: Any) -> Any:  # called by the preprocess task after the extractor
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("bug after feature extraction")
        return real(agents)

    monkeypatch.setattr(preprocess, "clip_needs", clip_needs)
    jfk = str((media_dir / "jfk.flac").resolve())
    out = tmp_path / "crash"
    # One worker: the first recording (jfk) fails, the next is admitted only as it ends.
    summary = annotate_corpus(
        inputs=[jfk, str(silent_video)], out=str(out), overrides={"run": {"workers": 1, "task_retries": 0}}
    )
    rows = list(read_rows(str(out)))
    crashed = [r for r in rows if r.recording.uri == jfk]
    assert len(crashed) == 1 and crashed[0].status == Status.failed and crashed[0].failure is not None
    assert crashed[0].failure.stage == "preprocess" and crashed[0].failure.kind.value == "internal"
    assert "bug after feature extraction" in crashed[0].failure.message
    assert any(r.recording.uri == str(silent_video.resolve()) for r in rows)  # the run went on
    assert summary.rows_written == len(rows)


# ------------------------------------------------------------------ kill -9 and resume

CLI = [sys.executable, "-m", "emoforge.cli"]


def _signature(root: Path) -> dict[str, Any]:
    """What must match between an interrupted+resumed run and an uninterrupted one."""
    out = {}
    for r in read_rows(str(root)):
        out[r.row_id] = (
            r.status.value,
            r.consensus.primary_label if r.consensus else None,
            sorted((a.agent, a.status.value, a.primary_label) for a in r.annotations),
            r.features.transcript.text if r.features and r.features.transcript else None,
        )
    return out


def test_sigkill_then_resume_equals_uninterrupted(media_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "small.yaml"
    # One recording per shard so the kill lands between commits.
    cfg.write_text("storage: {max_rows_per_shard: 1, flush_interval_s: 0}\n")
    inputs = [str(media_dir / "jfk.flac"), *(str(media_dir / c) for c in MER_CLIPS)]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(
        [*CLI, "annotate", *inputs, "--out", str(clean), "--config", str(cfg)],
        check=True,
        capture_output=True,
        env=env,
        timeout=1200,
    )
    proc = subprocess.Popen(
        [*CLI, "annotate", *inputs, "--out", str(killed), "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None:
        if (killed / "manifest.json").exists() and json.loads((killed / "manifest.json").read_text())["shards"]:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = read_table(str(killed), columns=["row_id"]).num_rows
    assert 0 < partial < len(_signature(clean))
    subprocess.run(
        [*CLI, "annotate", *inputs, "--out", str(killed), "--config", str(cfg)],
        check=True,
        capture_output=True,
        env=env,
        timeout=1200,
    )
    assert _signature(killed) == _signature(clean)
    ids = read_table(str(killed), columns=["row_id"]).column("row_id").to_pylist()
    assert len(ids) == len(set(ids))
    assert verify(str(killed)) == []
