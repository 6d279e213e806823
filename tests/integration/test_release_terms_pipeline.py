"""Issue 29's done-criterion: annotate a mixed-licence folder with the real pipeline, then
publish a release that holds exactly what each clip's terms allow."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.flows.annotate import annotate_corpus
from emoforge.storage.shards import read_rows

pytestmark = pytest.mark.slow

OPEN = {"licence": "CC-BY-4.0", "consent": "publish", "attribution": "Open Voices"}
RESEARCH = {"licence": "CC-BY-NC-SA-4.0", "consent": "research", "attribution": "RAVDESS"}


def test_a_mixed_licence_folder_is_annotated_and_released_as_its_terms_allow(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    mixed = tmp_path / "mixed"
    clips = {"open": ("01", "02"), "research": ("03",), "unknown": ("04",)}
    for folder, actors in clips.items():
        (mixed / folder).mkdir(parents=True)
        for actor in actors:
            shutil.copy(fixtures_dir / "ravdess" / f"03-01-05-01-01-01-{actor}.flac", mixed / folder / f"a{actor}.flac")
    (mixed / "open" / "terms.json").write_text(json.dumps(OPEN))
    (mixed / "research" / "terms.json").write_text(json.dumps(RESEARCH))

    corpus = tmp_path / "corpus"
    annotate_corpus(inputs=[str(mixed)], out=str(corpus), overrides={"run": {"workers": 1}})
    stored = {Path(r.recording.uri).parent.name: r.recording.terms.consent for r in read_rows(str(corpus))}
    assert stored == {"open": "publish", "research": "research", "unknown": "unknown"}

    res = CliRunner().invoke(app, ["inspect", str(corpus)])
    assert res.exit_code == 0 and "CC-BY-NC-SA-4.0" in res.output, res.output

    config = tmp_path / "copy.yaml"
    config.write_text("release:\n  policy:\n    consent: {publish: copy}\n    licence: {open: copy}\n")
    out = tmp_path / "release"
    res = CliRunner().invoke(app, ["export", str(corpus), "--out", str(out), "--all", "--config", str(config)])
    assert res.exit_code == 0, res.output
    rows = [
        r
        for s in ("train", "validation", "test")
        if (out / "data" / f"{s}.parquet").exists()  # a split with no rows has no file
        for r in pq.read_table(out / "data" / f"{s}.parquet").to_pylist()
    ]
    by_action: dict[str, set[str]] = {}
    for r in rows:
        by_action.setdefault(r["media_action"], set()).add(r["consent"])
    assert by_action == {"copy": {"publish"}, "features": {"research"}}  # the unknown clip is withheld
    assert "rows withheld: their licence or consent is unknown" in res.output
    originals = {hashlib.sha256((mixed / "open" / f"a{a}.flac").read_bytes()).hexdigest() for a in clips["open"]}
    copied = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "media").iterdir()}
    assert copied == originals
    assert all(r["media_uri"] is None for r in rows if r["consent"] == "research")
    card = (out / "README.md").read_text()
    n_copy = sum(r["media_action"] == "copy" for r in rows)
    n_features = sum(r["media_action"] == "features" for r in rows)
    assert f"- Media, by what the release policy did: copy {n_copy}, link 0, features {n_features}; " in card
