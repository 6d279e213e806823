"""Masking defined on our records: what an annotator is shown, minus some evidence.

Every backend reads the same inputs (``Features`` and an optional ``SegmentClip``), so
masking those is masking for all of them: the cue agents and trained recognizers read
fewer features, an LLM agent gets a different prompt (its data block, key frames and clip
parts are rendered from them, so its response-cache key differs too).

A modality is a set of *parts* of those inputs; dropping it removes every part:

* ``face``: the face observation (AUs, geometry), its summary, the key frames and the video
  (a face can be read from the pictures as well as from the AU numbers);
* ``visual``: the key frames and the video;
* ``voice``: the prosody, its summary and the audio; a video with a sound track is withheld
  too, since the voice would leak through it;
* ``text``: the transcript and its summary.

Features named by a cue (``AU12``, ``f0_mean_hz``) can be blanked one by one, and time
ranges blanked (AU frames, prosody frames, words and key frames inside them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from emoforge.agents.base import SegmentClip
from emoforge.agents.cues.face import canonical_au
from emoforge.storage.records import Features, Prosody

PARTS: dict[str, frozenset[str]] = {
    "face": frozenset({"face", "keyframes", "video"}),
    "visual": frozenset({"keyframes", "video"}),
    "voice": frozenset({"prosody", "audio"}),
    "text": frozenset({"transcript"}),
}
ALL_PARTS = frozenset().union(*PARTS.values())
# Prosody fields that say whether there is a voice at all, not what it sounds like: kept when
# other prosody features are blanked, so "only f0 cited" still leaves a voiced segment.
_PROSODY_FRAME = frozenset({"voiced_fraction"})


def parts_of(modalities: Iterable[str]) -> frozenset[str]:
    """The input parts that carry these modalities (unknown ones, like ``context``, carry none)."""
    return frozenset().union(*(PARTS.get(m, frozenset()) for m in modalities))


def drop_parts(
    features: Features, clip: SegmentClip | None, parts: Iterable[str]
) -> tuple[Features, SegmentClip | None]:
    """Copies of ``features`` and ``clip`` without the named parts (see the module docstring)."""
    drop = set(parts)
    update: dict[str, object] = {}
    evidence = features.evidence.model_copy()
    if "face" in drop:
        update["face"] = None
        evidence.face = None
    if "keyframes" in drop:
        update["keyframes"] = []
    if "prosody" in drop:
        update["prosody"] = None
        evidence.voice = None
    if "transcript" in drop:
        update["transcript"] = None
        evidence.text = None
    masked = features.model_copy(update={**update, "evidence": evidence})
    if clip is None:
        return masked, None
    audio = clip.audio_wav if "audio" not in drop else None
    video = clip.video_mp4 if "video" not in drop and not ("audio" in drop and clip.video_has_audio) else None
    out = replace(
        clip,
        audio_wav=audio,
        audio_s=clip.audio_s if audio is not None else 0.0,
        no_audio=clip.no_audio if audio is not None or clip.audio_wav is None else "masked",
        video_mp4=video,
        video_s=clip.video_s if video is not None else 0.0,
        video_frames=clip.video_frames if video is not None else 0,
        no_video=clip.no_video if video is not None or clip.video_mp4 is None else "masked",
    )
    return masked, out


_PROSODY_FIELDS = tuple(k for k in Prosody.model_fields if k != "frames")
# Features the voice cue agent cites that are computed from two prosody fields.
DERIVED: dict[str, tuple[str, ...]] = {"f0_cv": ("f0_mean_hz", "f0_sd_hz"), "f0_range_st": ("f0_min_hz", "f0_max_hz")}


def maskable(name: str) -> bool:
    """Whether ``blank_features`` can blank this feature key (an AU or a prosody field).

    Keys a model computes itself from the clip (``fer_happy``, ``text_p_sad``, ``level_dbfs``)
    are not: their modality can only be dropped whole."""
    return canonical_au(name) is not None or name in _PROSODY_FIELDS or name in DERIVED


def blank_features(features: Features, names: Iterable[str], keep: bool = False) -> Features:
    """Blank the named AUs and prosody fields (``keep=True``: blank every *other* one of the
    kinds named: keeping only AU12 blanks the other AUs but leaves prosody alone)."""
    aus = {au for n in names if (au := canonical_au(n)) is not None}
    fields = {f for n in names for f in DERIVED.get(n, (n,)) if f in _PROSODY_FIELDS}
    update: dict[str, object] = {}
    face = features.face
    if face is not None and aus:

        def au_ok(key: str) -> bool:
            named = canonical_au(key) in aus
            return named if keep else not named

        update["face"] = face.model_copy(
            update={
                "au_mean": {k: v for k, v in face.au_mean.items() if au_ok(k)},
                "au_peak": {k: v for k, v in face.au_peak.items() if au_ok(k)},
                "au_frames": [
                    f.model_copy(update={"values": {k: v for k, v in f.values.items() if au_ok(k)}})
                    for f in face.au_frames
                ],
            }
        )
    prosody = features.prosody
    if prosody is not None and fields:
        blanked = {
            k: None
            for k in _PROSODY_FIELDS
            if k not in _PROSODY_FRAME and ((k not in fields) if keep else (k in fields))
        }
        update["prosody"] = prosody.model_copy(update=blanked)
    return features.model_copy(update=update)


def blank_spans(features: Features, spans: Iterable[tuple[float, float]]) -> Features:
    """Blank what falls inside the time ranges: AU frames, prosody frames, words, key frames."""
    ranges = list(spans)

    def inside(t: float) -> bool:
        return any(a <= t <= b for a, b in ranges)

    update: dict[str, object] = {"keyframes": [k for k in features.keyframes if not inside(k.t_s)]}
    if features.face is not None:
        update["face"] = features.face.model_copy(
            update={"au_frames": [f for f in features.face.au_frames if not inside(f.t_s)]}
        )
    if features.prosody is not None:
        update["prosody"] = features.prosody.model_copy(
            update={"frames": [f for f in features.prosody.frames if not inside(f.t_s)]}
        )
    if features.transcript is not None:
        words = [w for w in features.transcript.words if not inside((w.start_s + w.end_s) / 2)]
        update["transcript"] = features.transcript.model_copy(
            update={"words": words, "text": " ".join(w.text for w in words) if words else features.transcript.text}
            if len(words) != len(features.transcript.words)
            else {}
        )
    return features.model_copy(update=update)
