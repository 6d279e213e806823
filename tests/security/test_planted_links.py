"""Rows 1 and 2 of docs/security.md: a corpus from someone else holding symlinks where the
project writes. No writer may follow one out of its folder: the report replaces a link at a
file it writes (or refuses a linked folder), and every corpus writer refuses a corpus whose
managed names (its lock among them) are links, with one line and a non-zero exit."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.release.clip_media import clip_slug
from emoforge.storage.lock import CorpusLock
from emoforge.storage.records import KeyFrame
from emoforge.storage.safe_files import UnsafePathError, make_dirs, write_bytes
from tests.quality.corpus import write_corpus
from tests.release.factory import make_row

PRECIOUS = b"# the user's own file\n"


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 10)).save(buf, format="JPEG")
    return buf.getvalue()


def _corpus(root: Path, media: str = "s3://bucket/shared.mp4") -> tuple[Path, str]:
    """A small corpus whose one row stores a key frame (the report writes it as it is when
    it can read ``media``)."""
    row = make_row("shared", 0, "happy", uri=media)
    assert row.features is not None
    row = row.model_copy(
        update={
            "features": row.features.model_copy(
                update={"keyframes": [KeyFrame(t_s=1.0, score=1.0, reason="peak", jpeg=_jpeg())]}
            )
        }
    )
    return write_corpus(root, [row]), row.row_id


def _victim(tmp_path: Path, name: str) -> Path:
    victim = tmp_path / "home" / name
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_bytes(PRECIOUS)
    return victim


def test_row1_report_replaces_planted_file_links_and_leaves_their_targets(tmp_path: Path, media_dir: Path) -> None:
    corpus, row_id = _corpus(tmp_path / "corpus", str(media_dir / "jfk.flac"))
    clips = corpus / "report_clips"
    (clips / "media").mkdir(parents=True)
    targets = {
        corpus / "report.html": _victim(tmp_path, ".bashrc"),
        clips / "index.html": _victim(tmp_path, ".profile"),
        clips / "media" / f"{clip_slug(row_id)}-f0.jpg": _victim(tmp_path, ".ssh_config"),
    }
    for link, victim in targets.items():
        os.symlink(victim, link)
    result = CliRunner().invoke(app, ["report", str(corpus)])
    assert result.exit_code == 0, result.output
    for link, victim in targets.items():
        assert victim.read_bytes() == PRECIOUS, f"written through {link}"
        assert link.is_file() and not link.is_symlink()
    assert (clips / "media" / f"{clip_slug(row_id)}-f0.jpg").read_bytes() == _jpeg()
    assert "<h1>Corpus report</h1>" in (corpus / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("linked", ["report_clips", "report_clips/media"])
def test_row1_report_refuses_a_linked_folder_in_one_line(tmp_path: Path, linked: str) -> None:
    corpus, _ = _corpus(tmp_path / "corpus")
    elsewhere = tmp_path / "home" / ".config"
    elsewhere.mkdir(parents=True)
    (corpus / linked).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(elsewhere, corpus / linked)
    result = CliRunner().invoke(app, ["report", str(corpus)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {corpus / linked} is a symlink: refusing to write "
                                                  "through it (it could point anywhere)"]  # fmt: skip
    assert list(elsewhere.rglob("*")) == []


def _review_export(tmp_path: Path) -> Path:
    path = tmp_path / "export.json"
    path.write_text("[]", encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["aggregate", "agreement", "review import", "annotate"])
@pytest.mark.parametrize("planted", [".emoforge.lock", "aggregation.parquet", "manifest.json"])
def test_row2_every_corpus_writer_refuses_planted_managed_links(tmp_path: Path, command: str, planted: str) -> None:
    corpus, _ = _corpus(tmp_path / "corpus")
    victim = _victim(tmp_path, ".bashrc")
    target = corpus / planted
    target.unlink(missing_ok=True)
    os.symlink(victim, target)
    args = {
        "aggregate": ["aggregate", str(corpus)],
        "agreement": ["agreement", str(corpus)],
        "review import": ["review", "import", str(corpus), str(_review_export(tmp_path))],
        "annotate": ["annotate", str(tmp_path / "none.wav"), "--out", str(corpus)],
    }[command]
    if command == "annotate":
        (tmp_path / "none.wav").write_bytes(b"")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{target} is a symlink" in result.output
    assert victim.read_bytes() == PRECIOUS


def test_row2_the_lock_never_opens_a_planted_link(tmp_path: Path) -> None:
    corpus, _ = _corpus(tmp_path / "corpus")
    victim = _victim(tmp_path, ".bashrc")
    (corpus / ".emoforge.lock").unlink()
    os.symlink(victim, corpus / ".emoforge.lock")
    with pytest.raises(UnsafePathError, match="is a symlink"):
        CorpusLock(str(corpus)).acquire()
    assert victim.read_bytes() == PRECIOUS


def test_helper_replaces_a_link_and_refuses_a_linked_folder(tmp_path: Path) -> None:
    victim = _victim(tmp_path, "target")
    root = tmp_path / "owned"
    root.mkdir()
    os.symlink(victim, root / "out.txt")
    write_bytes(root / "out.txt", b"new", root=root)
    assert victim.read_bytes() == PRECIOUS and (root / "out.txt").read_bytes() == b"new"
    assert not (root / "out.txt").is_symlink()
    os.symlink(victim.parent, root / "sub")
    with pytest.raises(UnsafePathError, match="sub is a symlink"):
        write_bytes(root / "sub" / "x.txt", b"x", root=root)
    with pytest.raises(UnsafePathError, match="sub is a symlink"):
        make_dirs(root / "sub" / "deeper", root=root)
    assert not (victim.parent / "x.txt").exists() and not (victim.parent / "deeper").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_every_other_writer_replaces_or_refuses_links(tmp_path: Path) -> None:
    """The review export's task files, the batches lock and the corpus's atomic writes."""
    import fsspec

    from emoforge.review.exporter import LabelStudioExport
    from emoforge.storage.batches import BatchBook, BatchRequest, PendingBatch
    from emoforge.storage.shards import write_atomic

    victim = _victim(tmp_path, ".bashrc")
    tasks = tmp_path / "review" / "tasks.json"
    tasks.parent.mkdir()
    os.symlink(victim, tasks)
    os.symlink(victim, tasks.with_suffix(".xml"))
    LabelStudioExport(tasks=[], labeling_config="<View/>", queued=0, audit=0).write(tasks)
    assert victim.read_bytes() == PRECIOUS
    assert json.loads(tasks.read_text()) == [] and tasks.with_suffix(".xml").read_text() == "<View/>"

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    os.symlink(victim, corpus / ".batches.lock")
    request = BatchRequest(custom_id="a:0", annotation_id="a", cache_key="0" * 64)
    with pytest.raises(UnsafePathError, match=r"\.batches\.lock is a symlink"):
        BatchBook(str(corpus)).put(PendingBatch(key="k", agent="llm", provider="openai", model="m", requests=[request]))
    assert victim.read_bytes() == PRECIOUS

    elsewhere = tmp_path / "home" / "folder"
    elsewhere.mkdir()
    os.symlink(elsewhere, corpus / "manifest.json")
    fs = fsspec.filesystem("file")
    write_atomic(fs, str(corpus / "manifest.json"), b"{}")
    assert list(elsewhere.iterdir()) == []  # not moved into the linked folder
    assert (corpus / "manifest.json").read_bytes() == b"{}" and not (corpus / "manifest.json").is_symlink()
