"""Incremental reruns over a growing folder, and corpora written through fsspec URLs."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from emoforge.flows import incremental
from emoforge.flows.annotate import annotate_corpus
from emoforge.flows.incremental import HashIndex, response_cache_dir
from emoforge.preprocess.media import MediaDecoder, MediaProber
from emoforge.storage.records import file_sha256, recording_id_for
from emoforge.storage.shards import read_manifest
from tests.conftest import count_calls, espeak
from tests.integration.orchestration.conftest import copy_clips, raw_row_ids, row_digest


@pytest.fixture
def stage_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts real probe/decode calls (the wrapped methods still do the work)."""
    return count_calls(monkeypatch, {"probe": (MediaProber, "probe"), "decode": (MediaDecoder, "decode")})


def test_rerun_over_growing_folder_does_only_new_and_changed_work(
    clips: list[Path], reference_corpus: Path, tmp_path: Path, stage_calls: Counter[str]
) -> None:
    folder = copy_clips(clips, tmp_path / "incoming", n=3)
    out = str(tmp_path / "corpus")

    first = annotate_corpus(inputs=[str(folder)], out=out)
    assert first.recordings == 3 and first.recordings_skipped == 0
    assert stage_calls == Counter(probe=3, decode=3)
    rows_after_first = row_digest(out)
    # Same media, same config: the same rows as the reference run of those three clips.
    reference = row_digest(str(reference_corpus))
    assert rows_after_first == {k: v for k, v in reference.items() if k in rows_after_first}
    assert len(rows_after_first) >= 3

    # Unchanged folder: nothing is probed, decoded or written.
    stage_calls.clear()
    again = annotate_corpus(inputs=[str(folder)], out=out)
    assert again.recordings_skipped == 3 and again.rows_written == 0
    assert again.rows_skipped == len(rows_after_first)
    assert sum(stage_calls.values()) == 0
    assert row_digest(out) == rows_after_first

    # The folder grows by one file and one file changes content: exactly those two run.
    copy_clips(clips[3:], folder)
    changed = espeak("Now this file says something else entirely.", folder / clips[0].name)
    stage_calls.clear()
    third = annotate_corpus(inputs=[str(folder)], out=out)
    assert third.recordings == 4 and third.recordings_skipped == 2
    assert stage_calls == Counter(probe=2, decode=2)
    rows = row_digest(out)
    new_id = recording_id_for(changed, file_sha256(changed))
    assert any(rid.startswith(new_id) for rid in rows)
    assert set(rows_after_first) <= set(rows)  # earlier rows stay, under the old content's id
    ids = raw_row_ids(out)
    assert len(ids) == len(set(ids)), "a row was written twice"


def test_hash_index_rehashes_only_touched_files(
    clips: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    real = incremental.file_sha256

    def spy(path: str) -> str:
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(incremental, "file_sha256", spy)
    folder = copy_clips(clips, tmp_path / "media", n=2)
    paths = sorted(str(p) for p in folder.iterdir())
    index = HashIndex(str(tmp_path / "corpus"))
    assert [index.sha256(p) for p in paths] == [real(p) for p in paths]
    index.save()

    reloaded = HashIndex(str(tmp_path / "corpus"))
    hashed.clear()
    assert [reloaded.sha256(p) for p in paths] == [real(p) for p in paths]
    assert hashed == []
    st = os.stat(paths[0])
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert reloaded.sha256(paths[0]) == real(paths[0])
    assert hashed == [Path(paths[0]).name]
    assert reloaded.sha256(str(tmp_path / "missing.wav")) is None


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_corpus_through_fsspec_url(scheme: str, clips: list[Path], reference_corpus: Path, tmp_path: Path) -> None:
    import fsspec

    url = f"memory://scale-{tmp_path.name}/corpus" if scheme == "memory" else f"file://{tmp_path}/corpus"
    summary = annotate_corpus(inputs=[str(clips[0].parent)], out=url)
    assert summary.recordings == 4
    assert row_digest(url) == row_digest(str(reference_corpus))
    fs, path = fsspec.core.url_to_fs(url)
    assert fs.exists(f"{path}/manifest.json")
    assert [s["name"] for s in read_manifest(url)["shards"]] == summary.shards
    # A rerun into the URL is incremental too: the hash index lives beside the manifest.
    again = annotate_corpus(inputs=[str(clips[0].parent)], out=url)
    assert again.recordings_skipped == 4 and again.rows_written == 0
    if scheme == "memory":
        fs.rm(path, recursive=True)
        assert not Path("memory:").exists(), "a memory:// corpus leaked onto the local disk"


def test_response_cache_is_local_for_remote_corpora(tmp_path: Path) -> None:
    assert response_cache_dir(str(tmp_path), None) == str(tmp_path / ".cache" / "responses")
    assert response_cache_dir(f"file://{tmp_path}", None) == str(tmp_path / ".cache" / "responses")
    assert response_cache_dir("s3://bucket/corpus", "/x/cache") == "/x/cache"
    remote = response_cache_dir("s3://bucket/corpus", None)
    assert "://" not in remote and remote == response_cache_dir("s3://bucket/corpus", None)
    assert remote != response_cache_dir("s3://bucket/other", None)


def test_a_new_file_is_hashed_once_by_planner_and_prober_together(
    clips: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emoforge.configs import load_config
    from emoforge.preprocess import media
    from emoforge.storage.records import MediaInput, Status
    from emoforge.storage.shards import CorpusState, DoneRow

    hashed: list[str] = []
    real = incremental.file_sha256

    def spy(path: str | Path) -> str:
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(incremental, "file_sha256", spy)
    monkeypatch.setattr(media, "file_sha256", spy)
    folder = copy_clips(clips, tmp_path / "media", n=1)
    path = str(next(folder.iterdir()))
    # Any committed row makes the planner hash (an empty corpus skips planning altogether).
    state = CorpusState(rows={"other-0000000000-00000": DoneRow(Status.ok, None)}, segment_counts={})
    plan = incremental.plan_inputs([MediaInput(uri=path)], state, "transient", HashIndex(str(tmp_path / "c")))
    (item,) = plan.todo
    assert item.known_hash is not None and hashed == [Path(path).name]

    prober = MediaProber(load_config().sampling.media)
    rec = prober.probe(item.uri, known_hash=item.known_hash)
    assert rec.sha256 == real(path) and hashed == [Path(path).name]  # not read a second time

    # Touched after planning: the planner's hash is stale, so probing hashes again.
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert prober.probe(item.uri, known_hash=item.known_hash).sha256 == real(path)
    assert hashed == [Path(path).name] * 2
