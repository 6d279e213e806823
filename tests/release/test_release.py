"""Release: Parquet splits readable by pandas/duckdb/HF datasets, hidden answers, checksums, card."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from emoforge.configs.release import ReleaseConfig
from emoforge.release.writer import HIDDEN_COLUMNS, ReleaseWriter, verify_release
from emoforge.storage.shards import read_manifest, read_rows, update_manifest_stats
from tests.release.factory import TAXONOMY, human, make_row, write_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    rng = random.Random(5)
    rows = []
    for i in range(60):
        for j in range(2):
            lab = rng.choice(TAXONOMY[:4])
            rows.append(
                make_row(
                    f"rec{i:03d}", j, lab, speaker=f"spk{i % 20}", source=f"show{i % 2}", judge_scores=(0.9, 0.5, 0.2)
                )
            )
    rows.append(make_row("bad000", 0, failed=True, speaker="spkX"))
    rows.append(make_row("flag000", 0, "sad", needs_review=True, speaker="spkY"))
    rows.append(make_row("flag001", 0, "happy", needs_review=True, speaker="spkZ", human=[human("angry")]))
    root = write_corpus(str(tmp_path_factory.mktemp("corpus")), rows)
    update_manifest_stats(root, "agreement", {"alpha": {"label_nominal": 0.41}, "pairs": [{"a": "face"}]})
    return root


@pytest.fixture(scope="module")
def release(corpus: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("release")
    cfg = ReleaseConfig(group_by=["speaker"])
    ReleaseWriter(cfg).write(list(read_rows(corpus)), out, read_manifest(corpus))
    return out


def test_filters_and_counts(release: Path) -> None:
    info = json.loads((release / "release.json").read_text())
    assert info["excluded"] == {"status_failed": 1, "needs_review": 1}
    total = sum(sum(c.values()) for c in info["counts"].values())
    assert total == 121  # 120 ok rows + the human-verified flagged row
    assert sum(info["counts"]["test"].values()) > 0


def test_pandas_duckdb_and_datasets_read_the_release(release: Path, tmp_path: Path) -> None:
    import duckdb
    import pandas as pd
    from datasets import load_dataset

    train = pd.read_parquet(release / "data" / "train.parquet")
    assert {"row_id", "label", "rationale", "annotators", "media_uri", "start_s"} <= set(train.columns)
    con = duckdb.connect()
    n = con.execute(f"select count(*) from '{release}/data/*.parquet'").fetchall()
    info = json.loads((release / "release.json").read_text())
    assert n[0][0] == sum(sum(c.values()) for c in info["counts"].values())
    verified = con.execute(
        f"select label from '{release}/data/train.parquet' where row_id = 'flag001-00000' "
        f"union all select label from '{release}/data/validation.parquet' where row_id = 'flag001-00000'"
    ).fetchall()
    test_ids = set(pd.read_parquet(release / "data" / "test.parquet").row_id)
    assert verified == [("angry",)] or "flag001-00000" in test_ids  # human label wins over consensus
    # A private cache: the shared one can answer from an older release0 of another session.
    ds = load_dataset(str(release), cache_dir=str(tmp_path / "hf-cache"))
    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"].num_rows == len(train)
    # one config needs one schema: HF fills the withheld test columns with nulls
    assert ds["test"].num_rows == len(test_ids)
    assert set(ds["test"]["label"]) == {None} and set(ds["test"]["valence"]) == {None}


def test_test_labels_hidden_and_in_answer_file(release: Path) -> None:
    import pyarrow.parquet as pq

    test = pq.read_table(release / "data" / "test.parquet")
    assert not set(HIDDEN_COLUMNS) & set(test.column_names)
    assert not (release / "answers").exists()
    sums = (release / "SHA256SUMS").read_text()
    assert "answers" not in sums and "test.jsonl" not in sums
    answer_dir = release.parent / f"{release.name}-answers"
    answers = [json.loads(line) for line in (answer_dir / "test.jsonl").read_text().splitlines()]
    assert sorted(a["row_id"] for a in answers) == sorted(test.column("row_id").to_pylist())
    assert all(a["label"] in TAXONOMY and a["rationale"].startswith("Step 1") for a in answers)
    # the reference rationale is the best-judged agreeing annotation's: face scored 0.9
    assert all("the face shows" in a["rationale"] for a in answers)


def test_no_speaker_crosses_and_same_seed_same_release(corpus: str, release: Path, tmp_path: Path) -> None:
    import pandas as pd

    speakers = {
        s: set(pd.read_parquet(release / "data" / f"{s}.parquet").speaker) for s in ("train", "validation", "test")
    }
    assert not speakers["train"] & speakers["test"]
    assert not speakers["train"] & speakers["validation"]
    assert not speakers["validation"] & speakers["test"]
    again = tmp_path / "again"
    ReleaseWriter(ReleaseConfig(group_by=["speaker"])).write(list(read_rows(corpus)), again, read_manifest(corpus))
    for split in ("train", "validation", "test"):
        a = pd.read_parquet(release / "data" / f"{split}.parquet").row_id.tolist()
        b = pd.read_parquet(again / "data" / f"{split}.parquet").row_id.tolist()
        assert a == b


def test_checksums_verify_and_detect_tampering(release: Path, tmp_path: Path) -> None:
    assert verify_release(release) == []
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=release).returncode == 0
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    with open(copy / "data" / "test.parquet", "ab") as fh:
        fh.write(b"\n")
    assert verify_release(copy) == ["data/test.parquet: sha256 mismatch"]
    assert verify_release(release.parent / f"{release.name}-answers") == []


def test_dataset_card_content(release: Path) -> None:
    card = (release / "README.md").read_text()
    assert card.startswith("---\nlicense: other")
    for needle in (
        "## Sources",
        "| show0 |",
        "## Taxonomy",
        "neutral, happy, sad, angry",
        "## Splits",
        "## Judge scores",
        "## Models and prompt versions",
        "face-rules",
        "| v1 |",
        "## Licence and terms",
        "## Agreement",
        "--answers test.jsonl",
    ):
        assert needle in card, needle
    # s_final: 120 rows x {0.9, 0.5, 0.2} + the verified row {0.7, 0.6, 0.5} -> mean 193.8 / 363 = 0.534
    assert "| rules | 363 | 0.534 | 0.200 | 0.500 | 0.900 |" in card
    assert "| agreement.alpha.label_nominal | 0.410 |" in card


def test_cli_export_warns_when_grouping_leaves_splits_empty(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from emoforge.cli import app

    rows = [make_row(f"rec{i}", j, "happy", source="one-folder", speaker=f"s{i}") for i in range(10) for j in range(2)]
    corpus = write_corpus(str(tmp_path / "c"), rows)
    res = CliRunner().invoke(app, ["export", corpus, "--out", str(tmp_path / "r1")])
    assert res.exit_code == 0, res.output
    assert "train          20 rows" in res.output
    assert "validation, test empty: 20 rows form only 1 group(s)" in res.output
    res = CliRunner().invoke(
        app, ["export", corpus, "--out", str(tmp_path / "r2"), "--group-by", "speaker", "--show-test-labels"]
    )
    assert "train          16 rows" in res.output and "test            2 rows" in res.output
    import pyarrow.parquet as pq

    assert "label" in pq.read_table(tmp_path / "r2" / "data" / "test.parquet").column_names
    assert not (tmp_path / "r2" / "answers").exists() and not (tmp_path / "r2-answers").exists()
    assert (tmp_path / "r1-answers" / "test.jsonl").exists() and not (tmp_path / "r1" / "answers").exists()


@pytest.mark.parametrize("n_recordings", [1, 2, 3])
def test_a_release_of_any_size_loads_in_datasets_duckdb_and_pandas(n_recordings: int, tmp_path: Path) -> None:
    """A split left empty has no file: a Parquet file of 0 rows broke `datasets.load_dataset`
    ("BatchSize must be greater than 0"), and the card names only the splits that have rows."""
    import duckdb
    import pandas as pd
    import yaml
    from datasets import load_dataset
    from typer.testing import CliRunner

    from emoforge.cli import app

    rows = [make_row(f"rec{i}", j, "happy" if j else "sad") for i in range(n_recordings) for j in range(2)]
    rows.append(make_row("bad", 0, failed=True))
    corpus = write_corpus(str(tmp_path / "c"), rows)
    release = tmp_path / "rel"
    res = CliRunner().invoke(app, ["export", corpus, "--out", str(release), "--all"])
    assert res.exit_code == 0, res.output
    info = json.loads((release / "release.json").read_text())
    counts = {s: sum(c.values()) for s, c in info["counts"].items()}
    assert sum(counts.values()) == 2 * n_recordings + 1
    filled = sorted(s for s, n in counts.items() if n)
    assert sorted(p.stem for p in (release / "data").iterdir()) == filled
    assert len(filled) < 3  # the case this test is for: at least one empty split
    header = yaml.safe_load((release / "README.md").read_text().split("---")[1])
    assert sorted(f["split"] for f in header["configs"][0]["data_files"]) == filled
    assert {s: len(pd.read_parquet(release / "data" / f"{s}.parquet")) for s in filled} == {
        s: counts[s] for s in filled
    }
    assert duckdb.connect().execute(f"select count(*) from '{release}/data/*.parquet'").fetchall() == [
        (sum(counts.values()),)
    ]
    ds = load_dataset(str(release), cache_dir=str(tmp_path / "hf-cache"))
    assert {s: ds[s].num_rows for s in ds} == {s: counts[s] for s in filled}
