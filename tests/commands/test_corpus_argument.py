"""Every command that takes a corpus accepts the same things and refuses the rest in one line, exit 2.

Accepted: the corpus folder, its ``file://`` URL, another fsspec URL (``memory://``), or the
folder holding exactly one corpus (``emoforge demo --out out/demo`` writes ``out/demo/corpus``),
used with a note. Refused: a missing path, a file (a shard names its folder), a folder with no
corpus or with several. A refusal writes nothing (``report`` left ``report_clips/`` behind).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.storage.locate import NotACorpus, locate_corpus
from tests.release.factory import make_row, write_corpus

# command line after the corpus argument, per command that takes one (OUT: a folder of the test)
COMMANDS = {
    "inspect": ["inspect", "{corpus}"],
    "agreement": ["agreement", "{corpus}"],
    "aggregate": ["aggregate", "{corpus}"],
    "report": ["report", "{corpus}", "--out", "{out}/report.html"],
    "export": ["export", "{corpus}", "--out", "{out}/release"],
    "review export": ["review", "export", "{corpus}", "{out}/review/tasks.json"],
    "review import": ["review", "import", "{corpus}", "{out}/export.json"],
}


def _run(name: str, corpus: str, out: Path) -> tuple[int, str]:
    args = [a.format(corpus=corpus, out=out) for a in COMMANDS[name]]
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.output


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [make_row(f"r{i}", 0, "happy" if i % 2 else "sad", needs_review=i == 0) for i in range(4)]
    root = tmp_path_factory.mktemp("parent") / "corpus"
    return Path(write_corpus(str(root), rows))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_folder_that_is_no_corpus_is_refused_in_one_line(name: str, tmp_path: Path) -> None:
    empty = tmp_path / "not-a-corpus"
    (empty / "media").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "export.json").write_text("[]")
    code, output = _run(name, str(empty), tmp_path / "out")
    assert code == 2, output
    assert output.strip() == f"error: {empty}: not an emoforge corpus (no manifest.json, no shards)"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["export.json"]  # nothing written
    assert sorted(p.name for p in empty.iterdir()) == ["media"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_file_url_and_parent_folder_name_the_same_corpus(name: str, corpus: Path, tmp_path: Path) -> None:
    export = [{"id": 1, "data": {"row_id": "r0-00000"}, "annotations": []}]
    (tmp_path / "export.json").write_text(json.dumps(export))
    code, output = _run(name, corpus.as_uri(), tmp_path)
    assert code == 0, output
    assert "note:" not in output and not (tmp_path / "file:").exists()
    code, output = _run(name, str(corpus.parent), tmp_path)
    assert code == 0, output
    assert f"note: {corpus.parent} is not a corpus; using the one inside it: {corpus}" in output


def test_locate_refuses_what_is_not_one_corpus(corpus: Path, tmp_path: Path) -> None:
    shard = next(corpus.glob("shard-*.parquet"))
    with pytest.raises(NotACorpus, match=f"is a shard file, not a corpus: pass its folder {corpus}$"):
        locate_corpus(shard)
    with pytest.raises(NotACorpus, match="no such folder"):
        locate_corpus(tmp_path / "missing")
    with pytest.raises(NotACorpus, match="is a file, not a corpus folder"):
        locate_corpus(corpus / "manifest.json")
    two = tmp_path / "two"
    for name in ("a", "b"):
        write_corpus(str(two / name), [make_row(name, 0)])
    with pytest.raises(NotACorpus, match=f"holds 2: pass one of {two / 'a'}, {two / 'b'}"):
        locate_corpus(two)
    assert locate_corpus(f"file://{corpus}").root == str(corpus)


def test_an_fsspec_url_is_a_corpus_when_it_holds_one() -> None:
    root = write_corpus("memory://located/corpus", [make_row("m", 0)])
    assert locate_corpus(root).root == root
    res = CliRunner().invoke(app, ["inspect", root, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["rows"] == 1
    with pytest.raises(NotACorpus, match="memory://located: not an emoforge corpus"):
        locate_corpus("memory://located")


def test_report_of_an_all_failed_corpus(tmp_path: Path) -> None:
    root = write_corpus(str(tmp_path / "corpus"), [make_row(f"f{i}", 0, failed=True) for i in range(3)])
    res = CliRunner().invoke(app, ["report", root, "--max-clips", "2"])
    assert res.exit_code == 0, res.output  # was TypeError: 'float' object is not iterable
    page = (tmp_path / "corpus" / "report.html").read_text()
    assert "<tr><th>failed</th><td>3</td></tr>" in page and "Agreement per annotator" in page
