"""Two `emoforge annotate` runs into one --out: the second refuses, or with --wait runs after
the first, and the corpus ends with every row of both, once (it used to keep 3 of 5)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from emoforge.storage.shards import read_manifest, verify
from tests.integration.orchestration.conftest import copy_clips, raw_row_ids, row_digest, stop_process


def _annotate(inputs: Path, out: Path, config: Path, *extra: str) -> subprocess.Popen[bytes]:
    emoforge = str(Path(sys.executable).with_name("emoforge"))
    return subprocess.Popen(
        [emoforge, "annotate", str(inputs), "--out", str(out), "--config", str(config), *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=dict(os.environ),
    )


def _running(out: Path) -> bool:
    try:
        runs = read_manifest(str(out))["runs"]
    except (OSError, ValueError):
        return False
    return bool(runs) and runs[-1]["status"] == "running"


@pytest.mark.slow
def test_second_annotate_refuses_and_a_waiting_one_loses_nothing(
    clips: list[Path], reference_corpus: Path, tmp_path: Path
) -> None:
    first, second = copy_clips(clips[:2], tmp_path / "first"), tmp_path / "second"
    for clip in clips[2:]:
        copy_clips([clip], second)
    config = tmp_path / "config.yaml"  # one commit per recording: the first run is long enough to overlap
    config.write_text(
        yaml.safe_dump({"storage": {"max_rows_per_shard": 1, "flush_interval_s": 0}, "run": {"workers": 1}})
    )
    out = tmp_path / "corpus"
    a = _annotate(first, out, config)
    procs = [a]
    try:
        deadline = time.monotonic() + 400
        while not _running(out) and a.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _running(out), (a.stderr.read() if a.stderr and a.poll() is not None else b"").decode()[-2000:]

        refused = _annotate(second, out, config)
        procs.append(refused)
        _, err = refused.communicate(timeout=120)
        said = " ".join(err.decode().split())
        assert refused.returncode == 3, said[-2000:]
        assert "being written by another emoforge run" in said and f"pid={a.pid}" in said and "--wait" in said
        assert len(read_manifest(str(out))["runs"]) == 1  # the refused run recorded nothing

        waiting = _annotate(second, out, config, "--wait")
        procs.append(waiting)
        _, err_a = a.communicate(timeout=600)
        assert a.returncode == 0, err_a.decode()[-3000:]
        _, err_w = waiting.communicate(timeout=600)
        assert waiting.returncode == 0, err_w.decode()[-3000:]
    finally:
        for proc in procs:
            stop_process(proc)

    assert row_digest(str(out)) == row_digest(str(reference_corpus))
    ids = raw_row_ids(str(out))
    assert len(ids) == len(set(ids)), "a row was committed twice"
    assert verify(str(out)) == []
    runs = read_manifest(str(out))["runs"]
    assert [r["status"] for r in runs] == ["finished", "finished"]
    assert runs[1]["started_at"] >= runs[0]["finished_at"], "the waiting run overlapped the first"
