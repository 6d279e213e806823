"""Pickled checkpoints: only the bundled pyannote file (by sha256) is unpickled unrestricted.

A checkpoint unpickled with ``weights_only=False`` can run any code, and
``sampling.vad.pyannote_model`` is a path anyone editing a config can point elsewhere. The
planted checkpoint here writes a marker file when unpickled: it must be refused with a
typed error and the marker never appear. Safe loading must also never be switched off for
the whole process (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), since other threads load user
files meanwhile.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emoforge.configs.preprocess import AsrConfig, DiarizationConfig
from emoforge.configs.sampling import VadConfig
from emoforge.preprocess.sampling.vad_pyannote import (
    BUNDLED_SHA256,
    UntrustedCheckpoint,
    is_bundled,
    load_segmentation_model,
    resolve_checkpoint,
)
from emoforge.preprocess.speakers import SpeakerAnalyzer
from emoforge.storage.records import ErrorKind

FORCE = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


class _Planted:
    """Unpickling this calls open(marker, 'w'): proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _planted_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    import torch

    marker = tmp_path / "code-ran"
    path = tmp_path / "pytorch_model.bin"
    torch.save({"pyannote.audio": {"architecture": _Planted(marker)}, "state_dict": {}}, path)
    return path, marker


def test_a_planted_checkpoint_is_refused_without_running_its_code(tmp_path: Path) -> None:
    path, marker = _planted_checkpoint(tmp_path)
    with pytest.raises(UntrustedCheckpoint, match="not the bundled pyannote checkpoint"):
        load_segmentation_model(path)
    assert not marker.exists()


def test_a_planted_checkpoint_in_the_config_is_a_typed_failure_of_the_stage(tmp_path: Path) -> None:
    path, marker = _planted_checkpoint(tmp_path)
    analyzer = SpeakerAnalyzer(DiarizationConfig(overlap=True), VadConfig(backend="pyannote", pyannote_model=str(path)))
    t = np.arange(16000 * 2) / 16000
    result = analyzer.analyze((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    (failure,) = result.failures
    assert failure.kind == ErrorKind.model_unavailable and "weights-only" in failure.message
    assert not marker.exists()


def test_the_bundled_checkpoint_is_recognised_by_its_bytes_not_its_path(tmp_path: Path) -> None:
    bundled = resolve_checkpoint("package:whisperx")
    assert is_bundled(bundled)
    copy = tmp_path / "elsewhere.bin"
    shutil.copyfile(bundled, copy)
    model = load_segmentation_model(copy)  # same bytes at another path: still the trusted file
    assert float(model.specifications.duration) > 0
    with copy.open("ab") as fh:
        fh.write(b"\0")  # one byte more: a different file, so the safe loader decides (and refuses)
    assert not is_bundled(copy)
    with pytest.raises(UntrustedCheckpoint, match=BUNDLED_SHA256[:12]):
        load_segmentation_model(copy)


class _RecordingEnviron(dict[str, str]):
    """os.environ stand-in that remembers every variable set while it is installed."""

    def __init__(self, base: dict[str, str]) -> None:
        super().__init__(base)
        self.set_keys: list[str] = []

    def __setitem__(self, key: str, value: str) -> None:
        self.set_keys.append(key)
        super().__setitem__(key, value)


def test_whisperx_loads_without_switching_safe_loading_off_for_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from emoforge.preprocess.asr import SpeechTranscriber

    env = _RecordingEnviron(dict(os.environ))
    monkeypatch.setattr(os, "environ", env)
    safe_before = list(torch.serialization.get_safe_globals())
    asr = SpeechTranscriber(AsrConfig(backend="whisperx", language="en", multilingual_model=None))
    model, _ = asr._model(asr.config.english_model)
    assert model.vad_model.vad_pipeline is not None  # whisperx got our VAD, loaded from the bundled file
    assert FORCE not in env.set_keys and FORCE not in env
    assert list(torch.serialization.get_safe_globals()) == safe_before  # no process-wide allow-list either
