"""`emoforge terms`: a corpus annotated before its terms were known (a schema v1 corpus, say)
gets them from the inputs' terms files and manifests, without annotating again."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.storage.records import Terms
from emoforge.storage.shards import read_manifest, read_rows
from tests.storage.test_schema_v1 import _row, _v1_corpus

RESEARCH = {"licence": "CC-BY-NC-SA-4.0", "consent": "research", "attribution": "RAVDESS"}


def test_a_v1_corpus_gets_its_terms_then_withdrawn_consent(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    rows = []
    for i in range(3):
        (media / f"m{i}.wav").write_bytes(f"RIFF {i}".encode())
        row = _row(i)
        rows.append(
            row.model_copy(update={"recording": row.recording.model_copy(update={"uri": str(media / f"m{i}.wav")})})
        )
    corpus = tmp_path / "corpus"
    _v1_corpus(corpus, rows)
    (media / "terms.json").write_text(json.dumps(RESEARCH))
    manifest = media / "withdrawn.csv"
    manifest.write_text("uri,consent\nm2.wav,none\nmissing.wav,none\n")

    res = CliRunner().invoke(app, ["terms", str(corpus), str(media)])
    assert res.exit_code == 0, res.output
    assert "3 rows of 3 recordings got new terms" in res.output
    assert [r.recording.terms for r in read_rows(str(corpus))] == [Terms(**RESEARCH)] * 3
    assert read_manifest(str(corpus))["runs"][-1]["run_id"].startswith("terms-")

    res = CliRunner().invoke(app, ["terms", str(corpus), str(media)])  # nothing new: nothing written
    assert "0 rows of 0 recordings got new terms" in res.output
    runs = len(read_manifest(str(corpus))["runs"])

    res = CliRunner().invoke(app, ["terms", str(corpus), str(manifest)])
    assert res.exit_code == 0, res.output
    assert "1 rows of 1 recordings got new terms" in res.output
    assert f"warning: {media / 'missing.wav'}: no committed recording has this path" in res.output
    terms = {Path(r.recording.uri).name: r.recording.terms for r in read_rows(str(corpus))}
    assert terms["m2.wav"] == Terms(**{**RESEARCH, "consent": "none"})  # the licence is kept
    assert terms["m0.wav"] == Terms(**RESEARCH)
    assert len(read_manifest(str(corpus))["runs"]) == runs + 1


def test_a_bad_terms_file_writes_nothing(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "a.wav").write_bytes(b"RIFF")
    (media / "terms.json").write_text('{"consent": "perhaps"}')
    corpus = tmp_path / "corpus"
    row = _row(0)
    _v1_corpus(
        corpus, [row.model_copy(update={"recording": row.recording.model_copy(update={"uri": str(media / "a.wav")})})]
    )
    res = CliRunner().invoke(app, ["terms", str(corpus), str(media)])
    assert res.exit_code == 2
    assert "consent 'perhaps' is not one of" in res.output
    assert len(read_manifest(str(corpus))["runs"]) == 0
