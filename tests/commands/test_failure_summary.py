"""Every run ends with which files failed and why; `inspect --failures` lists them all.

Before: a README renamed ``.mp4`` and a ``.txt`` ran to exit 0 with ``probe:corrupt_media 2``,
naming neither file nor reason; a folder with no media made an empty corpus without a word.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from emoforge.storage.failures import FailureDigest
from emoforge.storage.shards import read_rows
from tests.release.factory import make_row

EMOFORGE = str(Path(sys.executable).with_name("emoforge"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EMOFORGE, *args], capture_output=True, text=True, cwd=cwd, timeout=600, env=dict(os.environ))


def test_a_run_names_each_file_that_failed_and_why(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "README.mp4").write_text("# not a video\n" * 20)
    notes = tmp_path / "notes.txt"
    notes.write_text("plain text")
    done = _cli("annotate", str(media), str(notes), "--out", "corpus", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {Path(r.recording.uri).name: r for r in read_rows(str(tmp_path / "corpus"))}
    assert sorted(rows) == ["README.mp4", "notes.txt"]
    kinds = {f"{r.failure.stage}:{r.failure.kind.value}" for r in rows.values() if r.failure}
    (kind,) = kinds  # both fail the probe the same way
    printed = done.stderr
    assert "failures of run-" in printed and "emoforge inspect corpus --failures" in printed
    assert f"{kind} (2): " in printed
    for name, row in rows.items():
        assert row.failure is not None
        reason = " ".join(row.failure.message.split())[:60]
        assert f"{row.recording.uri}: {reason}" in " ".join(printed.split()), (name, printed)

    summary = _cli("inspect", "corpus", cwd=tmp_path)
    assert "each failure, its file and why: emoforge inspect corpus --failures" in summary.stdout, summary.stdout
    listed = _cli("inspect", "corpus", "--failures", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert sorted((e["kind"], Path(e["file"]).name) for e in json.loads(listed.stdout)) == [
        (kind, "README.mp4"),
        (kind, "notes.txt"),
    ]


def test_a_folder_without_media_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not media")
    done = _cli("annotate", "empty", "--out", "corpus", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: no media in empty (a folder is searched for ")
    assert not (tmp_path / "corpus").exists()


def test_digest_keeps_the_first_distinct_files_per_kind_most_frequent_first() -> None:
    rows = [make_row(f"r{i}", j, failed=True) for i in range(5) for j in range(2)]
    rows.append(make_row("v", 0, votes=("happy", None, "happy")))  # one refused vote
    digest = FailureDigest()
    digest.add(rows)
    assert digest.counts == {"asr:no_speech": 10, "agent voice: refusal": 1}
    assert digest.lines() == [
        "asr:no_speech (10): /media/r0.mp4: silence",
        "    /media/r1.mp4: silence",
        "    /media/r2.mp4: silence",
        "agent voice: refusal (1): /media/v.mp4: refused",
    ]
