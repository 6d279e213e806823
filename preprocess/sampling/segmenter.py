"""Turn shots and voice activity into segments, following the policy in config.

The policy (``plan_segments``) is pure time arithmetic, tested with hypothesis:

1. Regions are the shots (``cross_shots: false``) or the whole file; shots shorter than
   ``min_shot_s`` join the previous one first.
2. Speech turns are clipped to each region, turns closer than ``merge_gap_s`` merge, and a
   merged turn longer than ``max_len_s`` (less the padding) is split at its longest pauses
   that leave ``min_len_s`` on both sides (a stretch without one is cut into equal parts).
   Pieces shorter than ``min_len_s`` are dropped.
3. Each piece is padded by ``pad_s``, never past its region nor past half the gap to its
   neighbour, so segments never overlap.
4. Visual segments: with ``visual_mode: gaps`` (or a video with no audio track) every region
   without speech becomes ``max_len_s`` chunks of kind ``visual``; with ``whole``, a video
   without any speech becomes one ``full`` segment.
5. A file that yields nothing although it has speech or (visual mode on) video, and is no
   longer than ``max_len_s``, becomes one ``full`` segment: very short clips still count.

All times are rounded to the millisecond, so reruns give identical ids and spans.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal, NamedTuple, Protocol

import numpy as np

from emoforge.configs.sampling import SamplingConfig, SegmentPolicy
from emoforge.preprocess.media import Media
from emoforge.preprocess.sampling.instruction import render_instruction
from emoforge.preprocess.sampling.shots import ShotDetector
from emoforge.storage.records import Segment, Span, segment_id_for

Kind = Literal["speech", "visual", "full"]


class PlannedSegment(NamedTuple):
    start_s: float
    end_s: float
    kind: Kind
    shot_index: int


def _ms(t: float) -> float:
    return round(t, 3)


def _normalise(spans: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    """Clip to [lo, hi], round to ms, sort, and union overlapping spans."""
    out: list[tuple[float, float]] = []
    for a, b in sorted((_ms(max(lo, a)), _ms(min(hi, b))) for a, b in spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _regions(shots: list[Span], duration: float, policy: SegmentPolicy) -> list[tuple[float, float]]:
    bounds = sorted({_ms(s.start_s) for s in shots if 0 < s.start_s < duration})
    edges = [0.0, *bounds, _ms(duration)]
    regions = [(a, b) for a, b in itertools.pairwise(edges) if b > a]
    merged: list[tuple[float, float]] = []
    for a, b in regions:
        if merged and (b - a < policy.min_shot_s or merged[-1][1] - merged[-1][0] < policy.min_shot_s):
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged or [(0.0, _ms(duration))]


def _equal_edges(a: float, b: float, max_len: float) -> list[float]:
    """Cut [a, b] into the fewest equal parts no longer than ``max_len`` on the millisecond grid.

    Rounding the edges to milliseconds can lengthen a part by up to half a millisecond, so
    add a part until every rounded piece fits.
    """
    n = max(1, math.ceil((b - a) / max_len - 1e-9))
    while True:
        edges = [_ms(a + (b - a) * k / n) for k in range(n)] + [b]
        if all(y - x <= max_len + 1e-9 for x, y in itertools.pairwise(edges)) or (b - a) / n < 2e-3:
            return edges
        n += 1


def _split(turns: list[tuple[float, float]], max_len: float, min_len: float) -> list[tuple[float, float]]:
    """Split a merged group of turns longer than ``max_len`` at its longest pauses.

    A pause qualifies when both sides keep at least ``min_len`` of speech; a stretch with no
    qualifying pause is cut into equal parts. An explicit stack, not recursion: an hour of
    continuous talk has thousands of pauses.
    """
    out: list[tuple[float, float]] = []
    stack = [turns]
    while stack:
        group = stack.pop()
        a, b = group[0][0], group[-1][1]
        if b - a <= max_len:
            out.append((a, b))
            continue
        pauses = [
            (group[i + 1][0] - group[i][1], -abs((group[i][1] + group[i + 1][0]) / 2 - (a + b) / 2), i)
            for i in range(len(group) - 1)
            if group[i][1] - a >= min_len and b - group[i + 1][0] >= min_len
        ]
        if pauses:
            i = max(pauses)[2]
            stack += [group[i + 1 :], group[: i + 1]]
            continue
        out += [(x, y) for x, y in itertools.pairwise(_equal_edges(a, b, max_len)) if y > x]
    return sorted(out)


def _speech_pieces(
    speech: list[tuple[float, float]], region: tuple[float, float], policy: SegmentPolicy
) -> list[tuple[float, float]]:
    turns = _normalise(speech, *region)
    groups: list[list[tuple[float, float]]] = []
    for t in turns:
        if groups and t[0] - groups[-1][-1][1] < policy.merge_gap_s:
            groups[-1].append(t)
        else:
            groups.append([t])
    # leave room for the padding, so a padded segment is never longer than max_len_s
    room = policy.max_len_s - 2 * policy.pad_s if policy.max_len_s > 4 * policy.pad_s else policy.max_len_s
    pieces = [p for g in groups for p in _split(g, room, policy.min_len_s)]
    return [p for p in pieces if p[1] - p[0] >= policy.min_len_s]


def _pad(pieces: list[tuple[float, float]], region: tuple[float, float], pad: float) -> list[tuple[float, float]]:
    out = []
    for i, (a, b) in enumerate(pieces):
        lo = region[0] if i == 0 else (pieces[i - 1][1] + a) / 2
        hi = region[1] if i == len(pieces) - 1 else (b + pieces[i + 1][0]) / 2
        out.append((_ms(max(lo, a - pad)), _ms(min(hi, b + pad))))
    return out


def _chunks(region: tuple[float, float], policy: SegmentPolicy) -> list[tuple[float, float]]:
    edges = _equal_edges(*region, policy.max_len_s)
    return [(x, y) for x, y in itertools.pairwise(edges) if y - x >= max(policy.min_len_s, 1e-3)]


def plan_segments(
    speech: list[Span],
    shots: list[Span],
    duration: float,
    policy: SegmentPolicy,
    has_audio: bool = True,
    has_video: bool = True,
) -> list[PlannedSegment]:
    """Apply the segment policy; see the module docstring for the rules."""
    if duration <= 0:
        return []
    duration = _ms(duration)
    shot_edges = sorted((s.start_s, s.end_s) for s in shots) or [(0.0, duration)]
    regions = [(0.0, duration)] if policy.cross_shots else _regions(shots, duration, policy)
    raw = [(s.start_s, s.end_s) for s in speech]

    def shot_of(a: float, b: float) -> int:
        """Index (in ``shots``) of the shot holding the segment's midpoint."""
        mid = (a + b) / 2
        return next(
            (i for i, (x, y) in enumerate(shot_edges) if x <= mid < y),
            min(range(len(shot_edges)), key=lambda i: abs(sum(shot_edges[i]) / 2 - mid)),
        )

    planned: list[PlannedSegment] = []
    visual = has_video and (policy.visual_mode == "gaps" or not has_audio) and policy.visual_mode != "whole"
    for region in regions:
        pieces = _pad(_speech_pieces(raw, region, policy), region, policy.pad_s)
        planned += [PlannedSegment(a, b, "speech", shot_of(a, b)) for a, b in pieces]
        if not pieces and visual:
            planned += [PlannedSegment(a, b, "visual", shot_of(a, b)) for a, b in _chunks(region, policy)]
    has_speech = bool(_normalise(raw, 0.0, duration))
    if not planned and has_video and policy.visual_mode == "whole":
        planned.append(PlannedSegment(0.0, duration, "full", 0))
    wants_something = has_speech or (has_video and (policy.visual_mode != "off" or not has_audio))
    if not planned and wants_something and duration <= policy.max_len_s:
        planned.append(PlannedSegment(0.0, duration, "full", 0))
    return sorted(planned, key=lambda p: p.start_s)


def overlap_seconds(start: float, end: float, spans: list[Span]) -> float:
    return _ms(sum(max(0.0, min(end, s.end_s) - max(start, s.start_s)) for s in spans))


class SpeechDetector(Protocol):
    @property
    def model_id(self) -> str: ...

    def detect(self, audio: np.ndarray, sample_rate: int) -> list[Span]: ...


class Segmenter:
    """Shots + VAD + policy + instruction for one decoded recording; deterministic."""

    def __init__(self, config: SamplingConfig) -> None:
        self.config = config
        self.shots = ShotDetector(config.shots)
        self._vad: SpeechDetector | None = None

    @property
    def vad(self) -> SpeechDetector | None:
        """The configured VAD stage (built once; its model loads on first use)."""
        if self._vad is None and self.config.vad.backend != "none":
            if self.config.vad.backend == "pyannote":
                from emoforge.preprocess.sampling.vad_pyannote import PyannoteSegmentation

                self._vad = PyannoteSegmentation(self.config.vad)
            else:
                from emoforge.preprocess.sampling.vad_silero import SileroVad

                self._vad = SileroVad(self.config.vad)
        return self._vad

    @property
    def model_id(self) -> str:
        """For provenance (``ctx.provenance(stage="segment", model=..., prompt_version=...)``)."""
        vad = self.vad
        return f"{self.shots.model_id}+{vad.model_id if vad is not None else 'no-vad'}"

    def segment(self, media: Media) -> list[Segment]:
        rec = media.recording
        duration = media.duration_s
        shots = self.shots.detect(media)
        speech: list[Span] = []
        overlaps: list[Span] = []
        vad = self.vad
        audio = media.audio
        has_audio = audio is not None and audio.size > 0
        if audio is not None and has_audio and vad is not None:
            speech = vad.detect(audio, media.sample_rate)
            overlap_fn = getattr(vad, "overlaps", None)  # only pyannote's model sees overlaps
            if overlap_fn is not None:
                overlaps = overlap_fn(audio, media.sample_rate)
        planned = plan_segments(
            speech, shots, duration, self.config.policy, has_audio=has_audio, has_video=media.frames is not None
        )
        instruction = render_instruction(self.config.instruction.version, self.config.instruction.taxonomy)
        return [
            Segment(
                id=segment_id_for(rec.id, i),
                recording_id=rec.id,
                index=i,
                start_s=p.start_s,
                end_s=p.end_s,
                kind=p.kind,
                shot_index=p.shot_index,
                overlap_s=overlap_seconds(p.start_s, p.end_s, overlaps),
                instruction=instruction,
            )
            for i, p in enumerate(planned)
        ]
