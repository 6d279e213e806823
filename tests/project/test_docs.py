"""Docs as tests: every ```bash block of README.md and docs/*.md runs as written, or says why not.

A block is run here, in a folder laid out like a checkout (``.venv`` linked, the fixtures at
``../shared/fixtures``, ``out/corpus`` annotated from them once per session, and the inputs the
docs assume a user has: ``clips.csv``, ``my.yaml``, a Label Studio export, predictions), unless
the line just above its fence says otherwise:

    <!-- not run by the tests: REASON -->      (a server that runs until stopped, the suite itself)
    <!-- run by tests/some/test_file.py -->    (that file runs it, and names the doc)

A new block needs nothing to be run; a block that cannot run here needs one of the two markers.
What the docs say a command prints or writes is asserted (``CLAIMS``), and whatever a block
leaves in the folder must be git-ignored, so following the docs leaves a checkout clean.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from emoforge.storage.shards import read_rows

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DOCS = ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
NOT_RUN = re.compile(r"^<!-- not run by the tests: (\S.*) -->$")
RUN_BY = re.compile(r"^<!-- run by (tests/\S+\.py) -->$")
# What a user brings to the commands the docs show (paths relative to the checkout).
SAD = "sad"
USER_INPUTS = ("clips.csv", "my.yaml", "media", "export.json", "predictions.parquet", "predictions.jsonl")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    text: str
    above: str  # the line above the fence: a marker or prose

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def shell_blocks() -> list[Block]:
    blocks = []
    for doc in DOCS:
        text = (REPO / doc).read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            above = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
            blocks.append(Block(doc, text.count("\n", 0, m.start()) + 1, m.group(1), above))
    return blocks


BLOCKS = shell_blocks()
RUN_HERE = [b for b in BLOCKS if not NOT_RUN.match(b.above) and not RUN_BY.match(b.above)]


def test_every_shell_block_is_run_or_says_why_not() -> None:
    assert len(BLOCKS) >= 10 and RUN_HERE
    for doc in DOCS:  # a shell block under another fence name would escape this module
        text = (REPO / doc).read_text(encoding="utf-8")
        assert not re.search(r"^```(sh|shell|console|zsh)\s*$", text, re.M), f"{doc}: use ```bash"
    for block in BLOCKS:
        if block.above.startswith("<!--"):
            assert NOT_RUN.match(block.above) or RUN_BY.match(block.above), f"{block.id}: unknown marker"
        by = RUN_BY.match(block.above)
        if by:
            runner = REPO / by.group(1)
            assert runner.is_file(), f"{block.id}: {runner} does not exist"
            assert block.doc in runner.read_text(encoding="utf-8"), f"{block.id}: {runner} never reads {block.doc}"


def _emoforge(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _bash(ws, " ".join([".venv/bin/emoforge", *args]))


def _bash(ws: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=ws, env=env, capture_output=True, text=True, timeout=900
    )


def _checkout(root: Path, fixtures_dir: Path) -> Path:
    """``root/repo`` laid out like a checkout, with the fixtures at ``../shared/fixtures``."""
    ws = root / "repo"
    ws.mkdir(parents=True)
    (root / "shared").mkdir()
    (root / "shared" / "fixtures").symlink_to(fixtures_dir.resolve())
    for venv in (".venv", ".venv-labelstudio"):
        if (REPO / venv).exists():
            (ws / venv).symlink_to((REPO / venv).resolve())
    return ws


@pytest.fixture(scope="session")
def docs_checkout(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    """A checkout whose ``out/corpus`` is README's first command run on the fixtures."""
    ws = _checkout(tmp_path_factory.mktemp("docs"), fixtures_dir)
    first = next(line for b in RUN_HERE for line in b.text.splitlines() if " annotate ../shared/fixtures" in line)
    done = _bash(ws, first.split("#")[0])
    assert done.returncode == 0, done.stderr[-3000:]
    # README's quick start: `demo` annotates with this same command, which "prints a summary of
    # the run and where the shards and the manifest are" (setup.sh before it is CI's first step).
    _printed_where(done.stdout + done.stderr, "out/corpus")
    rows = list(read_rows(str(ws / "out" / "corpus")))
    assert rows
    (ws / "media").mkdir()
    shutil.copy(fixtures_dir / "media" / "jfk.flac", ws / "media" / "jfk.flac")
    (ws / "clips.csv").write_text("uri,source,speaker\nmedia/jfk.flac,fixtures,jfk\n")
    (ws / "my.yaml").write_text("name: my-corpus\n")
    ok = [r for r in rows if r.consensus is not None and r.consensus.primary_label]
    queue = [r for r in ok if r.consensus is not None and r.consensus.needs_review]
    predictions = [{"row_id": r.row_id, "label": "neutral"} for r in ok]
    (ws / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in predictions))
    import pandas as pd

    pd.DataFrame(predictions).to_parquet(ws / "predictions.parquet")
    export = [
        {
            "id": i + 1,
            "data": {"row_id": r.row_id},
            "annotations": [
                {
                    "id": i + 1,
                    "completed_by": 1,
                    "result": [
                        {
                            "from_name": "emotion",
                            "to_name": "transcript",
                            "type": "choices",
                            "value": {"choices": ["sad"]},
                        }
                    ],
                }
            ],
        }
        for i, r in enumerate(queue)  # the reviewer went through the whole queue
    ]
    (ws / "export.json").write_text(json.dumps(export))
    (ws / "review" / "round1").mkdir(parents=True)
    (ws / "review" / "round1" / "export.json").write_text(json.dumps(export))
    return ws


def _printed_where(out: str, corpus: str) -> None:
    assert f"shards:   {corpus}/shard-*.parquet" in out and f"manifest: {corpus}/manifest.json" in out
    assert out.count("jury: ") == 1 and "recordings" in out  # the run summary and its ledger, once


def _using_claims(ws: Path, out: str) -> None:
    estimate = json.loads(out[out.index("{\n") : out.index("\n}") + 2])
    assert {"calls", "input_tokens", "cost_usd", "provider_problems"} <= set(estimate)  # "calls, tokens, cost"
    assert "review queue:" in out and " failures" in out  # inspect, inspect --failures


def _after_annotation_claims(ws: Path, out: str) -> None:
    assert "stored under stats.agreement" in out and "human labels imported" in out
    assert sorted(p.name for p in (ws / "review").glob("tasks*.json"))
    assert (ws / "release" / "README.md").is_file() and (ws / "release-answers" / "test.jsonl").is_file()
    assert (ws / "out" / "corpus" / "report.html").is_file()
    assert (ws / "out" / "corpus" / "report_clips" / "index.html").is_file()  # "clip browser (report_clips/...)"


def _release_claims(ws: Path, out: str) -> None:
    assert (ws / "out" / "release" / "SHA256SUMS").is_file()
    assert (ws / "out" / "release-answers" / "test.jsonl").is_file()  # "-> ... (keep private)"
    assert (ws / "out" / "corpus" / "report.html").is_file()  # "-> out/corpus/report.html"
    assert "accuracy" in json.loads((ws / "metrics.json").read_text())


# A regex that finds the block, and what its prose says the block prints or writes.
CLAIMS: list[tuple[str, Callable[[Path, str], None]]] = [
    (r"emoforge annotate clips\.csv --out out/corpus --dry-run", _using_claims),
    (r"emoforge agreement out/corpus ", _after_annotation_claims),
    (r"# 3\. release: train/validation/test Parquet", _release_claims),
]


@pytest.mark.parametrize("block", RUN_HERE, ids=lambda b: b.id)
def test_block_runs_as_written(block: Block, docs_checkout: Path, tmp_path: Path) -> None:
    ws = tmp_path / "repo"
    shutil.copytree(docs_checkout.parent, tmp_path, symlinks=True, dirs_exist_ok=True)
    done = _bash(ws, block.text)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{block.id} failed:\n{out[-4000:]}"
    assert "Traceback" not in out, out[-4000:]
    for pattern, check in CLAIMS:
        if re.search(pattern, block.text):
            check(ws, out)
    left = sorted(
        p.name + "/" * p.is_dir() for p in ws.iterdir() if p.name not in USER_INPUTS and not p.name.startswith(".venv")
    )
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "--no-index", *left], capture_output=True, text=True, check=False
    )
    assert sorted(ignored.stdout.split()) == left, f"{block.id} leaves files git does not ignore: {left}"


def test_claims_name_blocks_that_exist() -> None:
    for pattern, _ in CLAIMS:
        assert [b for b in RUN_HERE if re.search(pattern, b.text)], f"no runnable block matches {pattern!r}"
