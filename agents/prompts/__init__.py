"""Versioned prompt templates (package data) and the renderer that fills them.

A version is a folder (``emo-cot-v1/``) with ``system.txt`` and ``user.txt``; changing
the wording means a new folder, so cached answers and stored provenance stay truthful.
Transcript and on-screen text are DATA: they are serialised as one JSON object inside
``<data>`` .. ``</data>`` with ``<`` and ``>`` escaped, so nothing a speaker says can
close the data block or pose as an instruction; the output schema is sent through the
provider's structured-output parameter, never through text the data could reach. The
segment's audio/video, when the agent takes them, ride along as media parts; the
template's ``$modalities`` then lists them (and leaves out a clip modality that is missing).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any

from emoforge.agents.base import AudioPart, ImagePart, Prompt, VideoPart
from emoforge.agents.schemas import MAX_STEPS
from emoforge.storage.records import Features, Segment


@dataclass(frozen=True)
class PromptTemplate:
    version: str
    system: str
    user: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(f"{self.system}\x00{self.user}".encode()).hexdigest()


@lru_cache(maxsize=16)
def load_template(version: str) -> PromptTemplate:
    """Read ``prompts/<version>/{system,user}.txt``; ValueError names the missing version."""
    root = resources.files("emoforge.agents").joinpath("prompts", version)
    try:
        system = root.joinpath("system.txt").read_text(encoding="utf-8")
        user = root.joinpath("user.txt").read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ValueError(f"unknown prompt_version {version!r}: no prompts/{version}/") from exc
    return PromptTemplate(version=version, system=system, user=user)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def evidence_data(features: Features, modalities: list[str]) -> dict[str, Any]:
    """The untrusted data block: only the modalities the agent may see."""
    data: dict[str, Any] = {}
    face = features.face
    if "face" in modalities:
        if face is not None and face.frames_with_face > 0:
            data["face"] = {
                "summary": features.evidence.face,
                "frames_with_face": face.frames_with_face,
                "frames_sampled": face.frames_sampled,
                "au_backend": face.au_backend,
                "au_mean": {k: _round(v) for k, v in sorted(face.au_mean.items())},
                "au_peak": {k: _round(v) for k, v in sorted(face.au_peak.items())},
                "peak_t_s": _round(features.peak_t_s, 2),
            }
        else:
            data["face"] = "no face found"
    if "voice" in modalities:
        p = features.prosody
        if p is not None and p.voiced_fraction:
            fields = p.model_dump(exclude={"frames"})
            data["voice"] = {"summary": features.evidence.voice} | {
                k: _round(v) if isinstance(v, float) else v for k, v in fields.items() if v is not None
            }
        else:
            data["voice"] = "no voiced speech"
    if "text" in modalities:
        t = features.transcript
        if t is not None and t.text.strip():
            data["transcript"] = {
                "text": t.text[:2000],
                "language": t.language,
                "reliable": t.reliable,
                "unreliable_reasons": t.unreliable_reasons,
                "summary": features.evidence.text,
            }
        else:
            data["transcript"] = "no transcript"
    return data


def _escape(data: dict[str, Any]) -> str:
    # \u003c / \u003e are the same characters to a JSON reader but can never close <data>.
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


def render(
    template: PromptTemplate,
    segment: Segment,
    features: Features,
    modalities: list[str],
    labels: list[str],
    max_keyframes: int,
    schema: dict[str, Any],
    audio: AudioPart | None = None,
    video: VideoPart | None = None,
) -> Prompt:
    """Fill a template for one segment; key frames are attached only for 'visual'.

    ``modalities`` are those the agent is given: its configured ones less a missing clip part.
    """
    images: tuple[ImagePart, ...] = ()
    if "visual" in modalities and max_keyframes > 0:
        images = tuple(ImagePart(jpeg=k.jpeg, t_s=k.t_s) for k in features.keyframes if k.jpeg)[:max_keyframes]
    system = Template(template.system).substitute(labels=", ".join(labels), max_steps=MAX_STEPS)
    user = Template(template.user).substitute(
        segment_id=segment.id,
        start_s=f"{segment.start_s:.2f}",
        end_s=f"{segment.end_s:.2f}",
        duration_s=f"{segment.duration_s:.2f}",
        modalities=", ".join(modalities) or "none",
        n_images=len(images),
        data=_escape(evidence_data(features, modalities)),
    )
    return Prompt(system=system, user=user, images=images, schema=schema, audio=audio, video=video)
