"""Every refusal is one line and a non-zero exit: the annotate flow's typed refusals (a lock
taken by another writer between the CLI's check and the writer's, a full disk) are not
printed by Prefect as a traceback above the CLI's own line (docs/security.md, "also")."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prefect import flow

from emoforge.refusals import quiet_refusals
from emoforge.storage.lock import CorpusLock
from emoforge.storage.shards import CorpusWriteError

REPO = Path(__file__).resolve().parents[2]

# The race: the CLI's early check passes (patched out here), then another writer holds the
# lock when the flow's writer takes it.
RACED = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    import emoforge.storage.lock as lock
    lock.wait_until_free = lambda *args, **kwargs: None
    from emoforge.cli import app
    app(sys.argv[1:])
    """
)


def test_a_lock_lost_to_a_race_is_one_line_without_a_prefect_traceback(tmp_path: Path, media_dir: Path) -> None:
    out = tmp_path / "corpus"
    holder = CorpusLock(str(out), "another run")
    holder.acquire()
    script = tmp_path / "raced.py"
    script.write_text(RACED.format(repo=str(REPO)))
    try:
        proc = subprocess.run(
            [sys.executable, str(script), "annotate", str(media_dir / "jfk.flac"), "--out", str(out)],
            capture_output=True, text=True, timeout=300, env=dict(os.environ),
        )  # fmt: skip
    finally:
        holder.release()
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Encountered exception" not in proc.stderr, proc.stderr
    assert "is being written by another emoforge run" in proc.stderr


@flow(name="refusal-probe")
def _failing(exc: BaseException) -> None:
    raise exc


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_only_the_named_refusals_are_quieted() -> None:
    seen = _Seen()
    logger = logging.getLogger("prefect.flow_runs")
    logger.addHandler(seen)
    try:
        with quiet_refusals(CorpusWriteError), pytest.raises(CorpusWriteError):
            _failing(CorpusWriteError(28, "could not commit 5 rows: No space left on device"))
        assert [r for r in seen.records if r.exc_info] == []
        with quiet_refusals(CorpusWriteError), pytest.raises(ValueError, match="a real bug"):
            _failing(ValueError("a real bug"))
        assert any(r.exc_info and isinstance(r.exc_info[1], ValueError) for r in seen.records)
    finally:
        logger.removeHandler(seen)
