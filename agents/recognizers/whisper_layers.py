"""Whisper's encoder re-run from its CTranslate2 weights, every layer's output: CTranslate2 gives only the last.

Whisper's final encoder layer is tuned for transcription; its middle layers carry more of
how something is said (emotion, speaker state), and pooled they transfer better across
corpora. CTranslate2's ``encode`` returns the final layer only, but its ``model.bin`` holds
every weight, so this re-runs the encoder from them in torch: two 1-D convolutions with GELU (the
second with stride 2), sinusoidal positions, pre-LayerNorm transformer blocks (fused QKV
self-attention, GELU feed-forward), a final LayerNorm. Only the encoder's variables are
read (the decoder's are skipped), in float32.

``model.bin`` (CTranslate2's ``ModelSpec._serialize``): uint32 binary version, string spec
name, uint32 revision, uint32 variable count, then per variable a string name, uint8 rank,
uint32 dims, uint8 dtype id, uint32 byte count and the raw bytes; strings are a uint16
length (with the terminating NUL) and the bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_BINARY_VERSIONS = (5, 6)


class WhisperFileError(ValueError):
    """A CTranslate2 Whisper ``model.bin`` this reader cannot use."""


def _unpack(f: BinaryIO, fmt: str, path: Path) -> Any:
    size = struct.calcsize(fmt)
    raw = f.read(size)
    if len(raw) != size:
        raise WhisperFileError(f"{path}: truncated CTranslate2 model file")
    return struct.unpack(fmt, raw)[0]


def _string(f: BinaryIO, path: Path) -> str:
    n = _unpack(f, "<H", path)
    return f.read(n)[:-1].decode("utf-8")


def read_encoder_weights(path: Path) -> dict[str, NDArray[Any]]:
    """The ``encoder/...`` variables of a CTranslate2 Whisper ``model.bin``, as float32 arrays.

    Raises:
        WhisperFileError: not a CTranslate2 Whisper model, an unknown binary version, a
            quantised encoder (int8 weights with scales), or a truncated file.
    """
    weights: dict[str, NDArray[Any]] = {}
    with path.open("rb") as f:
        version = _unpack(f, "<I", path)
        if version not in _BINARY_VERSIONS:
            raise WhisperFileError(f"{path}: CTranslate2 binary version {version}, expected one of {_BINARY_VERSIONS}")
        spec = _string(f, path)
        if spec != "WhisperSpec":
            raise WhisperFileError(f"{path}: a {spec!r} model, not Whisper")
        _unpack(f, "<I", path)  # revision
        for _ in range(_unpack(f, "<I", path)):
            name = _string(f, path)
            shape = [_unpack(f, "<I", path) for _ in range(_unpack(f, "<B", path))]
            dtype = _DTYPES[_unpack(f, "<B", path)]
            nbytes = _unpack(f, "<I", path)
            if not name.startswith("encoder/"):
                f.seek(nbytes, 1)
                continue
            if dtype in ("int8", "bfloat16") and name != "encoder/num_heads":
                raise WhisperFileError(f"{path}: {name} is {dtype}; only float16/float32 encoders are read")
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise WhisperFileError(f"{path}: truncated at {name}")
            weights[name] = np.frombuffer(raw, dtype).reshape(shape).astype(np.float32)
    if "encoder/conv1/weight" not in weights:
        raise WhisperFileError(f"{path}: no encoder weights")
    return weights


class WhisperLayers:
    """Whisper's encoder from a CTranslate2 model directory, run in torch (float32, CPU);
    ``hidden_states`` gives its states up to state ``last`` (default: all; blocks after it
    are not computed)."""

    def __init__(self, model_dir: Path, last: int | None = None) -> None:
        import torch

        w = read_encoder_weights(model_dir / "model.bin")
        self.heads = int(w.pop("encoder/num_heads")) if "encoder/num_heads" in w else 8
        self.n_layers = sum(1 for k in w if k.endswith("self_attention/linear_0/weight"))
        self.last = self.n_layers + 1 if last is None else last
        if not 0 <= self.last <= self.n_layers + 1:
            raise ValueError(f"state {self.last}: Whisper's encoder has states 0-{self.n_layers + 1}")
        self.n_mels = int(w["encoder/conv1/weight"].shape[1])
        unused = [f"encoder/layer_{i}/" for i in range(self.last, self.n_layers)]
        if self.last <= self.n_layers:
            unused.append("encoder/layer_norm/")
        # Blocks after ``last`` are never run: their weights are not kept (memory per worker).
        self.w = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in w.items() if not k.startswith(tuple(unused))}

    def _block(self, x: Any, i: int) -> Any:
        import torch.nn.functional as F

        p, w = f"encoder/layer_{i}/", self.w
        d = x.shape[-1]
        h = F.layer_norm(x, (d,), w[p + "self_attention/layer_norm/gamma"], w[p + "self_attention/layer_norm/beta"])
        qkv = F.linear(h, w[p + "self_attention/linear_0/weight"], w[p + "self_attention/linear_0/bias"])
        q, k, v = (m.reshape(len(x), self.heads, d // self.heads).transpose(0, 1) for m in qkv.chunk(3, dim=-1))
        attn = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(len(x), d)
        x = x + F.linear(attn, w[p + "self_attention/linear_1/weight"], w[p + "self_attention/linear_1/bias"])
        h = F.layer_norm(x, (d,), w[p + "ffn/layer_norm/gamma"], w[p + "ffn/layer_norm/beta"])
        h = F.gelu(F.linear(h, w[p + "ffn/linear_0/weight"], w[p + "ffn/linear_0/bias"]))  # exact (erf) GELU
        return x + F.linear(h, w[p + "ffn/linear_1/weight"], w[p + "ffn/linear_1/bias"])

    def hidden_states(self, mel: NDArray[Any]) -> list[NDArray[Any]]:
        """Frames (T/2, 512) after the convolutions + positions (state 0), after each block
        (1-6), after the final LayerNorm (7: CTranslate2's ``encode``), up to ``last``, for a
        (80, T) log-mel."""
        import torch
        import torch.nn.functional as F

        w = self.w
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(mel, np.float32))[None]
            x = F.gelu(F.conv1d(x, w["encoder/conv1/weight"], w["encoder/conv1/bias"], padding=1))
            x = F.gelu(F.conv1d(x, w["encoder/conv2/weight"], w["encoder/conv2/bias"], stride=2, padding=1))[0].T
            positions = w["encoder/position_encodings/encodings"]
            if len(x) > len(positions):
                raise ValueError(f"{len(x)} encoder frames; Whisper holds {len(positions)} (30 s)")
            states = [x + positions[: len(x)]]
            for i in range(min(self.last, self.n_layers)):
                states.append(self._block(states[-1], i))
            if self.last > self.n_layers:
                gamma, beta = w["encoder/layer_norm/gamma"], w["encoder/layer_norm/beta"]
                states.append(F.layer_norm(states[-1], (x.shape[-1],), gamma, beta))
            return [s.numpy() for s in states]
