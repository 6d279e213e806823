"""The environment is the locked one, and drift from the lock is caught (scripts/check_lock.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "lock.txt"
CHECK = REPO / "scripts" / "check_lock.py"


def run_check(lock: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(CHECK), str(lock), "--ignore", "emoforge", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_lock_pins_every_line_with_a_hash_and_one_opencv() -> None:
    text = LOCK.read_text(encoding="utf-8")
    entries = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert len(entries) > 100
    assert all("==" in e and e.endswith("\\") for e in entries), "every pin is exact and carries a hash"
    assert text.count("--hash=sha256:") == len(entries)
    opencv = [e.split("==")[0] for e in entries if e.lower().startswith("opencv")]
    assert opencv == ["opencv-contrib-python-headless"], opencv
    for tool in ("ruff", "mypy", "pytest", "pytest-timeout", "hypothesis"):
        assert any(e.lower().startswith(f"{tool}==") for e in entries), f"{tool} is not locked"


def test_this_environment_is_the_locked_one() -> None:
    result = run_check(LOCK)
    assert result.returncode == 0, result.stderr


def test_a_drifted_version_a_missing_and_an_extra_package_are_each_reported(tmp_path: Path) -> None:
    lines = LOCK.read_text(encoding="utf-8").splitlines()
    pins = {i: line for i, line in enumerate(lines) if line.lower().startswith(("numpy==", "pyarrow=="))}
    assert len(pins) == 2
    drifted = []
    for i, line in enumerate(lines):
        if line.lower().startswith("numpy=="):
            drifted.append("numpy==0.0.1 \\")
        elif line.lower().startswith("pyarrow=="):
            continue  # installed but no longer locked
        elif line.strip().startswith("--hash") and i - 1 in pins and lines[i - 1].lower().startswith("pyarrow=="):
            continue
        else:
            drifted.append(line)
    drifted.append("not-a-real-package-emoforge==1.0")
    lock = tmp_path / "lock.txt"
    lock.write_text("\n".join(drifted) + "\n", encoding="utf-8")
    result = run_check(lock)
    assert result.returncode == 1
    assert "version    numpy: installed" in result.stderr and "locked 0.0.1" in result.stderr
    assert "missing    not-a-real-package-emoforge==1.0" in result.stderr
    assert "not locked pyarrow==" in result.stderr
    extras = run_check(lock, "--print-extras")
    assert extras.stdout.split() == ["pyarrow"]


def test_print_pins_is_the_lock_as_a_constraints_file() -> None:
    """`scripts/lock.sh --keep` holds every locked version with these lines (PIP_CONSTRAINT)."""
    entries = [line.split()[0] for line in LOCK.read_text(encoding="utf-8").splitlines() if line and line[0].isalnum()]
    result = run_check(LOCK, "--print-pins", "--ignore", "torchcodec")
    assert result.returncode == 0, result.stderr
    pins = result.stdout.splitlines()
    canonical = {e.lower().replace("_", "-").replace(".", "-").split("==")[0] for e in entries}
    assert len(pins) == len(entries) - 1 and not any("--hash" in p for p in pins)
    assert {p.split("==")[0] for p in pins} == canonical - {"torchcodec"}
    versions = {e.split("==")[0].lower(): e.split("==")[1] for e in entries}
    assert "numpy==" + versions["numpy"] in pins
