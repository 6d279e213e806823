"""Fail-closed checks of a release from a corpus mixing publish, research, no-consent and
unknown clips: the release holds exactly what release.policy allows, the hidden test split
never carries a research clip's media, speaker hashes are stable across exports and unlinkable
across corpora, and the datasheet's counts are the release's."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.release.writer import verify_release
from emoforge.storage.records import SegmentRow, Terms
from tests.release.factory import TAXONOMY, make_row, write_corpus

SPLITS = ("train", "validation", "test")
CC_BY = Terms(licence="CC-BY-4.0", consent="publish", attribution="Open Talks", source_url=None)
TALK_SHOW = Terms(licence="none", consent="publish")
RESEARCH = Terms(
    licence="CC-BY-NC-SA-4.0", consent="research", attribution="RAVDESS", source_url="https://zenodo.org/r/1188976"
)
NO_CONSENT = Terms(licence="CC-BY-4.0", consent="none")
UNKNOWN = Terms()
# (prefix, terms, recordings): 2 segments each, one speaker per recording.
GROUPS = (
    ("pub", CC_BY, 8),
    ("show", TALK_SHOW, 3),
    ("res", RESEARCH, 12),
    ("nocon", NO_CONSENT, 2),
    ("unk", UNKNOWN, 5),
)
COPY_POLICY = "release:\n  group_by: [speaker]\n  policy:\n    consent: {publish: copy}\n    licence: {open: copy}\n"


def _rows(media: Path) -> list[SegmentRow]:
    rows = []
    for prefix, terms, n in GROUPS:
        for i in range(n):
            rec = f"{prefix}{i:02d}"
            path = media / f"{rec}.wav"
            path.write_bytes(f"RIFF {rec} media bytes".encode())  # copied, never decoded
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            for j in range(2):
                rows.append(
                    make_row(
                        rec,
                        j,
                        TAXONOMY[(i + j) % 4],
                        speaker=f"{prefix}-speaker-{i}",
                        source=prefix,
                        uri=str(path),
                        sha256=digest,
                        terms=terms,
                    )
                )
    return rows


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[SegmentRow]]:
    base = tmp_path_factory.mktemp("mixed")
    (base / "media").mkdir()
    rows = _rows(base / "media")
    return write_corpus(str(base / "corpus"), rows), rows


def _export(corpus: str, out: Path, *extra: str) -> str:
    config = out.parent / f"{out.name}.yaml"
    config.write_text(COPY_POLICY)
    res = CliRunner().invoke(app, ["export", corpus, "--out", str(out), "--config", str(config), *extra])
    assert res.exit_code == 0, res.output
    return res.output


def _published(out: Path) -> dict[str, list[dict[str, Any]]]:
    return {s: pq.read_table(out / "data" / f"{s}.parquet").to_pylist() for s in SPLITS}


@pytest.fixture(scope="module")
def release(corpus: tuple[str, list[SegmentRow]], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("rel") / "release"
    return out, _export(corpus[0], out)


def test_the_release_holds_only_what_the_policy_allows(
    corpus: tuple[str, list[SegmentRow]], release: tuple[Path, str]
) -> None:
    out, output = release
    published = _published(out)
    rows = [r for s in SPLITS for r in published[s]]
    by_terms = Counter((r["consent"], r["licence"], r["media_action"]) for r in rows)
    assert by_terms == {
        ("publish", "CC-BY-4.0", "copy"): 16,
        ("publish", "none", "features"): 6,
        ("research", "CC-BY-NC-SA-4.0", "features"): 24,
    }
    info = json.loads((out / "release.json").read_text())
    assert info["excluded"] == {"terms_unknown": 10, "withheld_by_policy": 4}
    assert not any(r["row_id"].startswith(("unk", "nocon")) for r in rows)
    assert "10 rows withheld: their licence or consent is unknown" in output and "--allow-unknown" in output
    assert "terms: consent research, licence noncommercial -> features (policy): 24 rows, 12 recordings" in output
    # features only: no media reference, no hash that points at it, no source link
    for r in rows:
        if r["media_action"] == "features":
            assert (r["media_uri"], r["media_sha256"], r["source_url"]) == (None, None, None), r["row_id"]
    # copies: exactly the publishable recordings' bytes, named by content hash, in the checksums
    source = {r.recording.sha256: Path(r.recording.uri) for r in corpus[1]}
    copied = {r["media_uri"] for r in rows if r["media_action"] == "copy"}
    assert sorted(p.name for p in (out / "media").iterdir()) == sorted(Path(u).name for u in copied)
    assert len(copied) == 8
    for r in rows:
        if r["media_action"] == "copy":
            assert re.fullmatch(r"media/[0-9a-f]{16}\.wav", r["media_uri"])
            assert (out / r["media_uri"]).read_bytes() == source[r["media_sha256"]].read_bytes()
    assert verify_release(out) == []
    assert {f"media/{Path(u).name}" for u in copied} <= set((out / "SHA256SUMS").read_text().split())


def test_the_hidden_test_split_never_carries_a_research_clips_media(
    corpus: tuple[str, list[SegmentRow]], release: tuple[Path, str]
) -> None:
    out, _ = release
    test = _published(out)["test"]
    research = [r for r in test if r["consent"] == "research"]
    assert research, "the fixture must put research clips in the test split"
    assert all(r["media_uri"] is None and r["media_sha256"] is None for r in research)
    assert "label" not in pq.read_table(out / "data" / "test.parquet").column_names  # still hidden
    # nor does any file of the release hold a research clip's bytes
    research_media = {r.recording.sha256 for r in corpus[1] if r.recording.terms.consent == "research"}
    released = {hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}
    assert not research_media & released


def test_no_speaker_name_reaches_a_published_file(
    corpus: tuple[str, list[SegmentRow]], release: tuple[Path, str]
) -> None:
    out, _ = release
    names = {r.recording.speaker for r in corpus[1]}
    published = _published(out)
    texts = [json.dumps(published, default=str), (out / "README.md").read_text(), (out / "release.json").read_text()]
    for name in names:
        assert all(name not in t for t in texts), name
    speakers = {r["speaker"] for s in SPLITS for r in published[s]}
    assert len(speakers) == 23 and all(re.fullmatch(r"spk-[0-9a-f]{16}", s) for s in speakers)


def _speakers(out: Path) -> dict[str, str]:
    return {r["row_id"]: r["speaker"] for s in SPLITS for r in _published(out)[s]}


def test_hashes_are_stable_across_exports_and_unlinkable_across_corpora(
    corpus: tuple[str, list[SegmentRow]], release: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = release
    _export(corpus[0], tmp_path / "again")
    assert _speakers(tmp_path / "again") == _speakers(out)
    other = write_corpus(str(tmp_path / "other-corpus"), corpus[1])  # the same clips, another corpus
    _export(other, tmp_path / "other")
    mine, theirs = _speakers(out), _speakers(tmp_path / "other")
    assert mine.keys() == theirs.keys()
    assert not set(mine.values()) & set(theirs.values())


def _card_table(card: str, heading: str) -> dict[tuple[str, ...], list[int]]:
    block = card.split(heading, 1)[1].split("\n\n", 2)[1]
    out = {}
    for line in block.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        out[tuple(cells[:-4])] = [int(c) for c in cells[-4:]]
    return out


def test_the_datasheet_counts_are_the_releases(release: tuple[Path, str]) -> None:
    out, _ = release
    card = (out / "README.md").read_text()
    published = _published(out)
    table = _card_table(card, "### By terms and what the release did with the media")
    expected: dict[tuple[str, ...], list[int]] = {}
    for i, split in enumerate(SPLITS):
        for r in published[split]:
            counts = expected.setdefault((r["consent"], r["licence"], r["media_action"]), [0, 0, 0, 0])
            counts[i] += 1
            counts[3] += 1
    assert table == expected
    sources = _card_table(card, "### By source, licence and consent")
    assert {k: v[3] for k, v in sources.items()} == {
        ("pub", "CC-BY-4.0", "publish"): 16, ("show", "none", "publish"): 6, ("res", "CC-BY-NC-SA-4.0", "research"): 24,
    }  # fmt: skip
    total = sum(len(published[s]) for s in SPLITS)
    assert f"{total} instances: " + ", ".join(f"{s} {len(published[s])}" for s in SPLITS) in card
    assert "- Media, by what the release policy did: copy 16, link 0, features 30; withheld 4, terms unknown 10" in card
    assert "  - RAVDESS (24 rows)" in card and "  - Open Talks (16 rows)" in card
    for section in ("## Motivation", "## Composition", "## Collection process", "## Preprocessing and labelling",
                    "## Known biases", "## Uses", "## Licence and terms", "## Maintenance"):  # fmt: skip
        assert section in card, section
    assert "Article 5(1)(f)" in card and card.count("**[A human must write this.]**") >= 8
    # the hidden test split's labels give no distribution either
    assert "| label | train | validation |\n" in card


def test_allow_unknown_publishes_unknown_terms_as_features_only(
    corpus: tuple[str, list[SegmentRow]], tmp_path: Path
) -> None:
    _export(corpus[0], tmp_path / "r", "--allow-unknown")
    rows = [r for s in SPLITS for r in _published(tmp_path / "r")[s]]
    unknown = [r for r in rows if r["consent"] == "unknown"]
    assert len(unknown) == 10
    assert all(r["media_action"] == "features" and r["media_uri"] is None for r in unknown)
    info = json.loads((tmp_path / "r" / "release.json").read_text())
    assert info["excluded"] == {"withheld_by_policy": 4}


def test_a_copy_of_changed_media_is_refused(corpus: tuple[str, list[SegmentRow]], tmp_path: Path) -> None:
    """The file at a recording's path no longer holds the bytes that were annotated: no copy."""
    changed_file = tmp_path / "changed.wav"
    changed_file.write_bytes(b"other bytes")
    changed = []
    for r in corpus[1]:
        if r.row_id.startswith("pub00"):
            changed.append(
                r.model_copy(update={"recording": r.recording.model_copy(update={"uri": str(changed_file)})})
            )
    root = write_corpus(str(tmp_path / "c"), changed)
    config = tmp_path / "c.yaml"
    config.write_text(COPY_POLICY)
    res = CliRunner().invoke(app, ["export", root, "--out", str(tmp_path / "r"), "--config", str(config)])
    assert res.exit_code == 2
    assert "its bytes changed since it was annotated" in res.output


def test_an_unreadable_salt_stops_the_export(tmp_path: Path) -> None:
    root = write_corpus(str(tmp_path / "c"), [make_row("rec0", 0, "happy", speaker="ann")])
    (Path(root) / "speaker-salt").write_text("not a hex salt")
    res = CliRunner().invoke(app, ["export", root, "--out", str(tmp_path / "r")])
    assert res.exit_code == 2
    assert "cannot read or make its speaker salt" in res.output
    assert not (tmp_path / "r").exists()
