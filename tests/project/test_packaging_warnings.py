"""Building the wheel prints no setuptools warnings (scripts/setup.sh used to show pages of
``project.license`` and "absent from the packages configuration" deprecations), and the
wheel carries the example configs those warnings were about."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_builds_without_setuptools_warnings(tmp_path: Path) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for folder in sorted(set(project["tool"]["setuptools"]["package-dir"].values())):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    code = f"from setuptools import build_meta as b; print(b.build_wheel({str(tmp_path / 'dist')!r}))"
    (tmp_path / "dist").mkdir()
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], cwd=src, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    noise = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if "warning" in line.lower() and "byte-compiling is disabled" not in line
    ]
    assert noise == []
    wheel = tmp_path / "dist" / done.stdout.strip().splitlines()[-1]
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "emoforge/configs/examples/llm-jury.yaml" in names
    assert "emoforge/configs/default.yaml" in names
    assert "emoforge/nativelog.py" in names
