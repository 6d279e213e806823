"""What the consensus reads about a vote from the backend that cast it.

Each provider declares these facts in its spec beside its code (``agents/providers.py``);
quality sits below agents, so whoever builds a consensus hands them down as a mapping from
backend name (``Annotation.backend``) to ``VoteSource`` (``agents.providers.vote_sources()``).
A backend missing from the mapping is read from its annotation alone: its modality from
``modalities_seen``, its confidence as uncalibrated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from emoforge.storage.records import Annotation


@dataclass(frozen=True)
class VoteSource:
    """``modality``: the one modality every vote of the backend rests on (offline cue agents
    and recognizers), else None. ``calibrated``: its confidence was calibrated on held-out
    data, so ``judge_discount: uncalibrated`` leaves it as it is."""

    modality: str | None = None
    calibrated: bool = False


UNKNOWN = VoteSource()


def source_of(annotation: Annotation, sources: Mapping[str, VoteSource]) -> VoteSource:
    return sources.get(annotation.backend, UNKNOWN)
