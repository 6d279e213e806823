"""`emoforge inspect` lists a corpus's pending provider batches (storage/batches.py):
provider, id, requests, age and last known state; finished ones are not listed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.configs.storage import StorageConfig
from emoforge.storage.batches import BatchBook, BatchRequest, PendingBatch
from emoforge.storage.records import utcnow
from emoforge.storage.shards import CorpusWriter


def _batch(key: str, state: str, batch_id: str | None, n: int, age_h: float) -> PendingBatch:
    ids = [f"s-{i}-gpt" for i in range(n)]
    requests = [BatchRequest(custom_id=f"{a}:k", annotation_id=a, cache_key="k" * 64) for a in ids]
    since = utcnow() - timedelta(hours=age_h)
    return PendingBatch(
        key=key, agent="gpt", provider="openai", model="m", state=state, requests=requests,  # type: ignore[arg-type]
        batch_id=batch_id, provider_state="in_progress" if batch_id else None, prepared_at=since, submitted_at=since,
    )  # fmt: skip


def test_inspect_lists_pending_batches_with_provider_id_requests_age_and_state(tmp_path: Path) -> None:
    CorpusWriter(str(tmp_path), StorageConfig(), "run-a").close(counts={})
    book = BatchBook(str(tmp_path))
    book.put(_batch("k-running", "submitted", "batch_7", 3, age_h=2.5))
    book.put(_batch("k-done", "ended", "batch_3", 5, age_h=30))

    result = CliRunner().invoke(app, ["inspect", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    (listed,) = json.loads(result.stdout)["batches"]
    assert listed["provider"] == "openai" and listed["id"] == "batch_7" and listed["requests"] == 3
    assert listed["state"] == "in_progress" and 2.5 * 3600 - 60 < listed["age_s"] < 2.5 * 3600 + 60

    table = CliRunner().invoke(app, ["inspect", str(tmp_path)])
    assert table.exit_code == 0, table.output
    assert "pending batches" in table.stdout and "batch_7" in table.stdout and "2h30m" in table.stdout
    assert "batch_3" not in table.stdout
