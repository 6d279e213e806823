"""What a preprocessing tool declares about itself, beside its code (``TOOL = ToolSpec(...)``).

A *tool* does one job inside a phase (ASR, prosody, key frames, ...). Its spec says the
name its failures and provenance carry, the phase that runs it, the config section that
sets it, and which ``Features`` fields it fills. ``preprocess/tools.py`` lists the specs
once; the extractor reads them from there. (The evidence timeline and the prompts read the
``Features`` fields the tools fill, not the tools.)

A tool that needs only the segment, the decoded media and what earlier tools filled gives
its spec a ``build``: the extractor then runs it on every segment by itself, in list order,
after the tools that share recording-level work (denoise, speakers, ASR, prosody, faces and
AUs, which the extractor wires by hand because each feeds the next).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from emoforge.configs.preprocess import PreprocessConfig
from emoforge.configs.sampling import KeyframeConfig
from emoforge.preprocess.media import Media
from emoforge.storage.records import Features, Segment


@dataclass(frozen=True)
class ToolSettings:
    """The config sections the preprocess phase hands its tools. Key frames keep their YAML
    home under ``sampling.keyframes`` (every existing config sets them there), so that one
    section rides along beside ``preprocess``."""

    preprocess: PreprocessConfig
    keyframes: KeyframeConfig


class SegmentTool(Protocol):
    """A tool the extractor runs on each segment by itself."""

    model_id: str | None

    def fill(self, media: Media, segment: Segment, features: Features) -> dict[str, Any] | None:
        """The ``Features`` fields it fills (a subset of its spec's ``fills``) for ``segment``,
        given what earlier tools filled; None when it has nothing to say (no provenance then).
        Raising makes a typed failure named after the tool; the other tools still run."""
        ...


@dataclass(frozen=True)
class ToolSpec:
    """One tool's declaration.

    Attributes:
        name: its ``Failure.stage`` and ``Provenance.stage`` string.
        phase: the phase that runs it.
        section: its dotted config path (``preprocess.asr``), or None when it has no settings.
        fills: the ``Features`` fields it writes.
        build: for a tool the extractor runs per segment by itself: makes it from the settings.
    """

    name: str
    phase: Literal["sampling", "preprocess"]
    section: str | None
    fills: tuple[str, ...]
    build: Callable[[ToolSettings], SegmentTool] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.fills) - set(Features.model_fields)
        if unknown:
            raise ValueError(f"tool {self.name!r} fills {sorted(unknown)}, which Features does not have")
