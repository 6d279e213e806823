"""A per-decode patch of faster-whisper's encoder: skip tail slivers, trim the zero padding.

The reasons are in ``EncoderHook``'s docstring; the patch is set on one model
instance for one decode and removed on exit, so concurrent decodes of other models are
untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_TRIM_MARGIN_FRAMES = 100  # 1 s of the padding kept after the speech: the decoder sees it end


class TailSliver(Exception):
    """Raised from the encoder hook to end a decode before a tail sliver window."""


class EncoderHook:
    """Wraps one faster-whisper decode's encoder calls: skips tail slivers, trims padding.

    Tail slivers: after a window whose last sentence Whisper leaves open, it re-seeks to the
    last word's end and encodes a whole padded 30 s window for what is left: at the end of
    the speech that is a fraction of a second the previous window already heard, costing a
    full encoder pass and decoding into padding, where Whisper loops. The hook sees each
    window's features (the real frames, then zero padding), so it can tell such a tail
    window from a real one before it is encoded, and ends the decode instead (the first
    window always runs). ``min_tail_s = 0`` never skips.

    Padding: a window shorter than 30 s is zero-padded to 30 s, and the encoder's cost is
    linear in frames, so a 4 s clip pays for 30 s. With ``min_window_s < 30`` the encoder
    gets only the real frames plus 1 s (at least ``min_window_s``); the decoder reads what
    is there, as whisper.cpp's ``audio_ctx`` does. 30 keeps Whisper's own padding.
    """

    def __init__(self, model: Any, min_tail_s: float, min_window_s: float = 30.0) -> None:
        self.model = model
        self.min_frames = int(min_tail_s * 100)  # Whisper features: 100 frames per second
        self.window_frames = int(min_window_s * 100)
        self.windows = 0

    def __enter__(self) -> EncoderHook:
        encode = self.model.encode

        def hooked(features: np.ndarray) -> Any:
            self.windows += 1
            real = real_frames(features)
            if self.windows > 1 and self.min_frames and real < self.min_frames:
                raise TailSliver
            keep = min(features.shape[-1], max(real + _TRIM_MARGIN_FRAMES, self.window_frames))
            if keep < features.shape[-1]:
                features = np.ascontiguousarray(features[..., :keep])
            return encode(features)

        self.model.encode = hooked  # on this instance only, for this decode only
        return self

    def __exit__(self, *exc: object) -> None:
        del self.model.encode

    def segments(self, segments: Any) -> Any:
        try:
            yield from segments
        except TailSliver:
            return


def real_frames(features: np.ndarray) -> int:
    """Frames before the zero padding ``pad_or_trim`` appends (log-mel frames are never all zero)."""
    filled = np.flatnonzero(np.any(np.asarray(features).reshape(-1, features.shape[-1]) != 0, axis=0))
    return int(filled[-1]) + 1 if filled.size else 0
