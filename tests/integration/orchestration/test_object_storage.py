"""Media read from a real local S3-compatible server and the corpus written to the same
server: moto's S3 server on 127.0.0.1 (``tests/s3_server.py``), with fake credentials and its
endpoint in the environment only while this module runs (``emoforge`` reads them there, as it
would read a real bucket's).

`emoforge annotate s3://BUCKET/in/ --out s3://BUCKET/corpus` ends with the rows of the
uninterrupted local run (``reference_corpus`` in this folder's conftest.py), each row naming
its ``s3://`` object, and `emoforge inspect s3://BUCKET/corpus` reads the corpus back; a run
reading a manifest of ``s3://`` objects is SIGKILLed after its first commit and resumed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.storage.shards import read_manifest, read_table, verify
from tests.integration.orchestration.conftest import raw_row_ids, row_digest
from tests.integration.orchestration.test_kill_and_resume import annotate, kill_after_first_commit
from tests.s3_server import s3_server


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server for this module's tests (``tests/s3_server.py``)."""
    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture()
def bucket(s3_endpoint: str, clips: list[Path]) -> str:
    """A fresh bucket holding the four clips under ``in/``; returns ``s3://NAME``."""
    import s3fs

    name = f"emoforge-{uuid.uuid4().hex[:12]}"
    fs = s3fs.S3FileSystem()
    fs.mkdir(name)
    for clip in clips:
        fs.put_file(str(clip), f"{name}/in/{clip.name}")
    return f"s3://{name}"


def _uris(corpus: str) -> set[str]:
    return {r["uri"] for r in read_table(corpus, columns=["recording"]).column("recording").to_pylist()}


@pytest.mark.slow
def test_annotate_reads_s3_media_into_a_corpus_on_s3(bucket: str, clips: list[Path], reference_corpus: Path) -> None:
    """The media objects under the prefix given on the command line are listed, read from the
    server (spooled per task), and the corpus is written there: the rows of the local run,
    each naming its ``s3://`` object, and `inspect` of the bucket's corpus reports them."""
    corpus = f"{bucket}/corpus"
    # In this process (the CLI as typed, its models already loaded by the reference run);
    # the kill test below runs it as a process of its own.
    run = CliRunner().invoke(app, ["annotate", f"{bucket}/in/", "--out", corpus])
    assert run.exit_code == 0, run.output

    assert row_digest(corpus) == row_digest(str(reference_corpus))
    assert _uris(corpus) == {f"{bucket}/in/{c.name}" for c in clips}
    ids = raw_row_ids(corpus)
    assert len(ids) == len(set(ids)) and verify(corpus) == []
    assert [r["status"] for r in read_manifest(corpus)["runs"]] == ["finished"]

    shown = CliRunner().invoke(app, ["inspect", corpus, "--json"])
    assert shown.exit_code == 0, shown.output
    info = json.loads(shown.stdout)
    assert info["rows"] == len(ids) and not info["problems"], info


@pytest.mark.slow
def test_sigkill_a_run_reading_s3_then_resume(
    bucket: str, clips: list[Path], reference_corpus: Path, one_row_shards: Path, tmp_path: Path
) -> None:
    """A manifest naming ``s3://`` objects, the corpus in the same bucket: killed after its
    first commit (its lock object left on the server, naming a dead pid) and resumed, the
    run ends with the rows of the uninterrupted local run."""
    manifest = tmp_path / "clips.jsonl"
    manifest.write_text("".join(json.dumps({"uri": f"{bucket}/in/{c.name}"}) + "\n" for c in clips))
    corpus = f"{bucket}/corpus"
    killed_at = kill_after_first_commit(annotate(manifest, corpus, one_row_shards), corpus)
    assert read_manifest(corpus)["runs"][-1]["status"] == "running"  # killed: nobody closed it

    resume = annotate(manifest, corpus, one_row_shards)
    _, err = resume.communicate(timeout=600)
    assert resume.returncode == 0, err.decode()[-3000:]

    assert row_digest(corpus) == row_digest(str(reference_corpus)), f"killed after {killed_at} shards"
    ids = raw_row_ids(corpus)
    assert len(ids) == len(set(ids)), "a committed row was written again"
    assert verify(corpus) == []
    assert [r["status"] for r in read_manifest(corpus)["runs"]] == ["interrupted", "finished"]
    assert _uris(corpus) == {f"{bucket}/in/{c.name}" for c in clips}
