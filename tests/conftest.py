"""Shared test fixtures: the real media in ../shared/fixtures and media generated on the fly.

Fixture tests skip only when the folder is absent AND ``EMOFORGE_FIXTURES`` is unset; CI
sets the variable, so there a missing folder is an error, not a skip.
"""

from __future__ import annotations

import atexit
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Same default as emoforge/__init__.py, set here too because a test module may import Prefect first.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("OMP_NUM_THREADS", "2")  # py-feat would force 1 if unset
# A private Prefect home per test session: its SQLite database is not shared with other
# sessions (or the user's own ~/.prefect), so concurrent runs never lock each other.
# Removed at exit: ~9 MB each, and every session used to leave one behind in /tmp.
if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="emoforge-prefect-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]
MER_CLIPS = ("sample_00000694.mp4", "sample_00003358.mp4", "sample_00004735.mp4")
JFK_TRANSCRIPT = (
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
)


def _fixtures_root() -> Path | None:
    env = os.environ.get("EMOFORGE_FIXTURES")
    root = Path(env) if env else REPO.parent / "shared" / "fixtures"
    if not root.is_absolute():
        root = (REPO / root).resolve()
    if root.is_dir():
        return root
    if env:
        raise RuntimeError(f"EMOFORGE_FIXTURES={env} is set but {root} does not exist")
    return None


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    root = _fixtures_root()
    if root is None:
        pytest.skip("../shared/fixtures absent and EMOFORGE_FIXTURES unset")
    return root


@pytest.fixture(scope="session")
def media_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "media"


@pytest.fixture(scope="session")
def mer_labels(fixtures_dir: Path) -> list[dict[str, str]]:
    with open(fixtures_dir / "labels" / "mer2023_clips.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run_ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly; raises CalledProcessError with stderr on failure."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("ffmpeg not installed: run scripts/setup.sh")
    subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def media_duration(path: Path) -> float:
    """Container duration by ffprobe: an independent check of the files emoforge cuts."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def espeak(text: str, out: Path, voice: str = "en-us", speed: int = 150, pitch: int = 50) -> Path:
    """Synthesize speech with espeak-ng into a 16 kHz mono WAV."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng not installed: run scripts/setup.sh")
    raw = out.with_suffix(".raw.wav")
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw), text], check=True)
    run_ffmpeg("-i", str(raw), "-ar", "16000", "-ac", "1", str(out))
    raw.unlink()
    return out


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated")


@pytest.fixture(scope="session")
def speech_wav(generated_dir: Path) -> Path:
    """~4 s of English speech with a pause, made by espeak-ng."""
    return espeak("I can not believe it. This is wonderful news!", generated_dir / "speech.wav")


@pytest.fixture(scope="session")
def silent_video(generated_dir: Path) -> Path:
    """3 s of colour bars with no audio stream."""
    out = generated_dir / "bars_noaudio.mp4"
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25:duration=3",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(out),
    )
    return out


@pytest.fixture(scope="session")
def corrupt_media(generated_dir: Path) -> Path:
    out = generated_dir / "corrupt.mp4"
    out.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    return out


@pytest.fixture(autouse=True)
def _drop_broken_lazy_modules() -> None:
    """Remove speechbrain's placeholder modules for optional backends that are not installed.

    pyannote imports speechbrain, which registers lazy stand-ins (e.g. for k2) in
    sys.modules; touching any attribute of one raises ImportError, not AttributeError.
    hypothesis scans sys.modules for ``__file__`` before drawing data, so every property
    test that runs after an audio test would fail on a module nobody uses.
    """
    lazy_mod = sys.modules.get("speechbrain.utils.importutils")
    lazy_cls = getattr(lazy_mod, "LazyModule", None) if lazy_mod is not None else None
    if lazy_cls is None:
        return
    for name, module in list(sys.modules.items()):
        if isinstance(module, lazy_cls) and getattr(module, "lazy_module", True) is None:
            try:
                module.ensure_module(1)
            except ImportError:
                del sys.modules[name]


def count_calls(monkeypatch: pytest.MonkeyPatch, methods: dict[str, tuple[type, str]]) -> Counter[str]:
    """Counts calls of ``methods`` (name -> (class, method)); the wrapped methods still do the
    work. Used to prove that a run did not decode or extract what it should have skipped."""
    calls: Counter[str] = Counter()

    def counting(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    for name, (cls, attr) in methods.items():
        monkeypatch.setattr(cls, attr, counting(name, getattr(cls, attr)))
    return calls
