"""Row 5 of docs/security.md: media in emotion-named folders (``data/angry/*.wav``).

A release hides its test labels, but names derived from the media's folders and files
(``media_uri``, ``source``, ``recording_id``, ``row_id``) would spell them, and per-label
counts of the test split would publish its distribution. The export warns, publishes the
hidden split under opaque names (the answers use the same ids; the private map names each
opaque media file's original) and prints no per-label count of the hidden split.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from emoforge.cli import app
from tests.release.factory import make_row, write_corpus

LABELS = ("angry", "happy", "neutral", "sad")


def _named_corpus(root: Path) -> str:
    rows = []
    for i in range(48):
        label = LABELS[i % 4]
        rec = f"{label}-{i:02d}-0123456789"
        rows.append(make_row(rec, 0, label, source=label, uri=f"/srv/emo/data/{label}/{label}_{i:02d}.wav"))
    return write_corpus(str(root), rows)


def _leaks(value: object) -> bool:
    return bool(set(re.findall(r"[a-z]+", str(value).lower())) & set(LABELS))


def test_row5_hidden_rows_carry_no_label_in_their_names_and_no_per_label_counts(tmp_path: Path) -> None:
    corpus = _named_corpus(tmp_path / "corpus")
    out = tmp_path / "release"
    result = CliRunner().invoke(app, ["export", corpus, "--out", str(out), "--group-by", "speaker"])
    assert result.exit_code == 0, result.output
    assert "hidden test rows name a label" in result.output and "published under opaque ids" in result.output
    test = pq.read_table(out / "data" / "test.parquet").to_pylist()
    assert len(test) >= 5
    for rec in test:
        for field in ("row_id", "recording_id", "media_uri", "source", "speaker"):
            assert not _leaks(rec[field]), (field, rec[field])
    # The public splits keep their names; the hidden one is renamed consistently.
    assert any(_leaks(r["media_uri"]) for r in pq.read_table(out / "data" / "train.parquet").to_pylist())
    answers = [json.loads(x) for x in (tmp_path / "release-answers" / "test.jsonl").read_text().splitlines()]
    assert sorted(a["row_id"] for a in answers) == sorted(r["row_id"] for r in test)
    media = [json.loads(x) for x in (tmp_path / "release-answers" / "test_media.jsonl").read_text().splitlines()]
    assert sorted(m["media_uri"] for m in media) == sorted(r["media_uri"] for r in test)
    assert all(m["original"].endswith(".wav") and _leaks(m["original"]) for m in media)

    info = json.loads((out / "release.json").read_text())
    assert info["counts"]["test"] == {"(hidden)": len(test)}
    assert not any(_leaks(g) for g in info["groups"]["test"])
    card = (out / "README.md").read_text()
    datasheet = card[card.index("# Datasheet") :]
    card = card[: card.index("# Datasheet")]  # the card's own tables; the datasheet's are checked below
    cells = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
        for line in card.splitlines()
        if line.startswith("| ")
    }
    assert cells["(hidden)"] == ["0", "0", str(len(test))]
    public = {lab: 0 for lab in LABELS}
    for split in ("train", "validation"):
        for rec in pq.read_table(out / "data" / f"{split}.parquet").to_pylist():
            public[rec["label"]] += 1
    for lab in LABELS:
        assert cells[lab][2] == "0"  # the split table's test column
    # The sources table counts label-named sources over the public rows only: total minus
    # public per label would otherwise give the hidden split's label counts.
    sources = card[card.index("## Sources") : card.index("## Taxonomy")]
    for lab in LABELS:
        assert f"| {lab} | {public[lab]} | {public[lab]} |" in sources
    # The datasheet's label table has no column for the hidden split.
    labels = datasheet[datasheet.index("### Labels") :].split("\n## ")[0]
    header = next(line for line in labels.splitlines() if line.startswith("| label"))
    assert "test" not in header and "validation" in header


def test_row5_keep_still_warns_and_never_counts_hidden_labels(tmp_path: Path) -> None:
    corpus = _named_corpus(tmp_path / "corpus")
    out = tmp_path / "release"
    args = ["export", corpus, "--out", str(out), "--group-by", "speaker", "--hidden-ids", "keep"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "hidden test rows name a label" in result.output and "published as they are" in result.output
    info = json.loads((out / "release.json").read_text())
    assert list(info["counts"]["test"]) == ["(hidden)"]
    assert not (tmp_path / "release-answers" / "test_media.jsonl").exists()


def test_row5_label_words_in_names_are_found_with_their_synonyms() -> None:
    from emoforge.release.hidden import label_leaks

    rows = [
        {"row_id": "r1", "recording_id": "x", "media_uri": "AudioWAV/1001_DFA_ANG_XX.wav", "source": "crema"},
        {"row_id": "r2", "recording_id": "x", "media_uri": "clips/anger/07.wav", "source": None},
        {"row_id": "r3", "recording_id": "x", "media_uri": "clips/content/none.wav", "source": "flat"},
        {"row_id": "r4", "recording_id": "x", "media_uri": "clips/a/08.wav", "source": None, "speaker": "Sad"},
    ]
    assert label_leaks(rows, ["angry", "sad"]) == [
        "media_uri=AudioWAV/1001_DFA_ANG_XX.wav",
        "media_uri=clips/anger/07.wav",
        "speaker=Sad",
    ]
