"""Release safety: no test-set leakage through duplicate media, answers never published,
no writing through symlinks, and a dataset card whose tables corpus names cannot break."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoforge.configs.release import ReleaseConfig
from emoforge.release.card import cell
from emoforge.release.splits import SplitAssigner
from emoforge.release.writer import ReleaseError, ReleaseWriter
from tests.release.factory import TAXONOMY, make_row

SAME_BYTES = "cd" * 32


def _rows_with_a_copy() -> list:
    """40 recordings of 2 segments; rec000 and copy-of-rec000 are the same file under two names."""
    rows = [
        make_row(f"rec{i:03d}", j, TAXONOMY[i % 4], speaker=f"spk{i}", source=None) for i in range(40) for j in range(2)
    ]
    rows[0] = make_row("rec000", 0, TAXONOMY[0], speaker="spk0", source=None, sha256=SAME_BYTES)
    rows[1] = make_row("rec000", 1, TAXONOMY[0], speaker="spk0", source=None, sha256=SAME_BYTES)
    rows += [
        make_row("copy-of-rec000", j, TAXONOMY[0], speaker="spk-other", source=None, sha256=SAME_BYTES)
        for j in range(2)
    ]
    return rows


def test_identical_media_under_two_names_never_crosses_splits() -> None:
    rows = _rows_with_a_copy()
    crossed = 0
    for seed in range(10):
        a = SplitAssigner(ReleaseConfig(seed=seed, group_by=["speaker"])).assign(rows)
        where = {a.splits[r.row_id] for r in rows if r.recording.sha256 == SAME_BYTES}
        crossed += len(where) > 1
        assert a.duplicates == {SAME_BYTES: ["copy-of-rec000", "rec000"]}
    assert crossed == 0


def test_release_reports_duplicate_media(tmp_path: Path) -> None:
    summary = ReleaseWriter(ReleaseConfig(group_by=["speaker"])).write(_rows_with_a_copy(), tmp_path / "r")
    info = json.loads((tmp_path / "r" / "release.json").read_text())
    assert info["duplicate_media"] == {SAME_BYTES: ["copy-of-rec000", "rec000"]}
    assert any("identical media under 2 recording ids (copy-of-rec000, rec000" in w for w in summary.warnings)
    assert "2 recording ids share media with another" in (tmp_path / "r" / "README.md").read_text()


def test_answers_go_outside_the_release_and_never_inside(tmp_path: Path) -> None:
    rows = _rows_with_a_copy()
    writer = ReleaseWriter(ReleaseConfig(group_by=["speaker"]))
    summary = writer.write(rows, tmp_path / "pub", answers_out=tmp_path / "private")
    assert summary.answers == str(tmp_path / "private")
    published = {p.relative_to(tmp_path / "pub").as_posix() for p in (tmp_path / "pub").rglob("*") if p.is_file()}
    assert published == {
        "data/train.parquet",
        "data/validation.parquet",
        "data/test.parquet",
        "README.md",
        "release.json",
        "SHA256SUMS",
    }
    n_test = sum(sum(c.values()) for s, c in summary.counts.items() if s == "test")
    assert len((tmp_path / "private" / "test.jsonl").read_text().splitlines()) == n_test > 0
    for inside in (tmp_path / "pub", tmp_path / "pub" / "answers", tmp_path / "pub" / "data" / "x"):
        with pytest.raises(ReleaseError, match="inside the release folder"):
            writer.write(rows, tmp_path / "pub", answers_out=inside)
    (tmp_path / "old" / "answers").mkdir(parents=True)  # left by an older emoforge
    with pytest.raises(ReleaseError, match="must not be published"):
        writer.write(rows, tmp_path / "old")


@pytest.mark.parametrize("link", ["data", "README.md", "release"])
def test_symlinks_in_the_release_folder_are_refused(tmp_path: Path, link: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "pub"
    if link == "release":
        os.symlink(elsewhere, out)
    else:
        out.mkdir()
        os.symlink(elsewhere if link == "data" else elsewhere / "victim.md", out / link)
    with pytest.raises(ReleaseError, match="symlink"):
        ReleaseWriter(ReleaseConfig(group_by=["speaker"])).write(_rows_with_a_copy(), out)
    assert list(elsewhere.iterdir()) == []


def test_cli_export_answers_out_and_refusal(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from emoforge.cli import app
    from tests.release.factory import write_corpus

    corpus = write_corpus(str(tmp_path / "c"), _rows_with_a_copy())
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "export",
            corpus,
            "--out",
            str(tmp_path / "r"),
            "--group-by",
            "speaker",
            "--answers-out",
            str(tmp_path / "keys"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert f"answers -> {tmp_path / 'keys'}" in res.output and (tmp_path / "keys" / "test.jsonl").exists()
    res = runner.invoke(
        app, ["export", corpus, "--out", str(tmp_path / "r2"), "--answers-out", str(tmp_path / "r2" / "keys")]
    )
    assert res.exit_code == 2 and "inside the release folder" in res.output
    assert not (tmp_path / "r2" / "keys").exists()


def test_card_tables_escape_pipes_html_and_links(tmp_path: Path) -> None:
    evil = "news|desk <img src=x onerror=alert(1)> [click](http://evil.example) <http://evil.example>"
    rows = [make_row(f"rec{i:03d}", 0, TAXONOMY[i % 4], speaker=f"spk{i}", source=evil) for i in range(12)]
    ReleaseWriter(ReleaseConfig(group_by=["speaker"])).write(rows, tmp_path / "r")
    card = (tmp_path / "r" / "README.md").read_text()
    line = next(x for x in card.splitlines() if "news" in x)
    assert line.count("|") - line.count("\\|") == 4  # source | recordings | segments: 3 cells
    assert "<img" not in card and "<http" not in card and "[click](http" not in card
    assert "&lt;img src=x onerror=alert(1)&gt;" in line and "\\[click\\]" in line


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_a_cell_never_breaks_its_row_or_opens_html(text: str) -> None:
    escaped = cell(text)
    unescaped_pipes = escaped.replace("\\\\", "").replace("\\|", "")
    assert "|" not in unescaped_pipes and "<" not in escaped and ">" not in escaped and "\n" not in escaped


def test_release_publishes_media_paths_relative_to_the_corpus_media(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    rows = [
        make_row(
            f"rec{i:03d}",
            0,
            TAXONOMY[i % 4],
            speaker=f"spk{i}",
            source=None,
            uri=f"/data/lab/run1/{sub}/rec{i:03d}.mp4",
        )
        for i, sub in enumerate(["a", "b"] * 10)
    ] + [make_row("remote", 0, TAXONOMY[0], speaker="spkr", source=None, uri="s3://private-bucket/x/remote.mp4?sig=1")]
    ReleaseWriter(ReleaseConfig(group_by=["speaker"])).write(rows, tmp_path / "pub")
    published = [
        u
        for split in ("train", "validation", "test")
        for u in pq.read_table(tmp_path / "pub" / "data" / f"{split}.parquet").column("media_uri").to_pylist()
    ]
    assert published and not any(u.startswith("/") or "://" in u or ".." in u for u in published)
    assert {u.split("/")[0] for u in published if u != "remote.mp4"} <= {"a", "b"}
    assert not any("/data/lab" in p.read_text(errors="ignore") for p in (tmp_path / "pub").rglob("*.md"))
