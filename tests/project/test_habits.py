"""Habits stay wired: the pre-commit hooks lint with the locked ruff, and CONTRIBUTING.md
points at files that exist (a move that forgets the guide fails here)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _locked(package: str) -> str:
    text = (REPO / "requirements" / "lock.txt").read_text(encoding="utf-8")
    match = re.search(rf"(?im)^{re.escape(package)}==([^\s\\]+)", text)
    assert match, f"{package} is not in requirements/lock.txt"
    return match.group(1)


def test_pre_commit_runs_ruff_check_and_format_with_the_locked_ruff() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {h["id"]: h["entry"] for repo in config["repos"] for h in repo["hooks"]}
    assert hooks["ruff-check"].startswith(".venv/bin/ruff check")
    assert hooks["ruff-format"].startswith(".venv/bin/ruff format")
    # The hooks run the venv's ruff: it must be the version the lock pins (and scripts/test.sh uses).
    out = subprocess.run(
        [str(REPO / ".venv" / "bin" / "ruff"), "--version"], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.split()[-1] == _locked("ruff")


def test_contributing_points_at_files_that_exist() -> None:
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    paths = set(
        re.findall(r"`((?:agents|configs|storage|preprocess|flows|emoforge|tests|benchmarks|scripts)/[\w./]*)`", text)
    )
    assert len(paths) > 20, "the guide names too few files: the pattern above is stale"
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert missing == []
