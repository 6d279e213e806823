"""The task paired with every segment, as versioned templates.

A template is never edited in place: a wording change is a new version, so a stored row's
``Instruction.version`` always names the exact text its annotators were asked.
"""

from __future__ import annotations

from emoforge.storage.records import Instruction

_TEMPLATES: dict[str, str] = {
    "emo-cot-v1": (
        "Identify the most prominent emotion expressed by the person in this clip.\n"
        "Choose exactly one label from: {labels}.\n"
        "Reason step by step before answering, and give the intermediate steps:\n"
        "1. Visual evidence: describe the facial expression, action units, gaze, head and body "
        "movement you observe, citing the key frames or times.\n"
        "2. Acoustic evidence: describe pitch, loudness, speaking rate, voice quality and pauses.\n"
        "3. Textual evidence: quote the words that carry emotional meaning, if any.\n"
        "4. Weigh the modalities: say where they agree or conflict and which one you trust more, "
        "and why.\n"
        "Cite at least one piece of modality-specific evidence for every claim; if a modality is "
        "missing or uninformative, say so instead of guessing.\n"
        "Finally give the label, your confidence (0-1) and the intensity (0-1)."
    ),
}

DEFAULT_VERSION = "emo-cot-v1"


def instruction_versions() -> list[str]:
    """Template versions this build can render."""
    return sorted(_TEMPLATES)


def render_instruction(version: str, taxonomy: list[str]) -> Instruction:
    """Render template ``version`` with the label set.

    Raises:
        ValueError: unknown version or empty taxonomy (a config error, not a media failure).
    """
    template = _TEMPLATES.get(version)
    if template is None:
        raise ValueError(f"unknown instruction version {version!r}; known: {', '.join(instruction_versions())}")
    labels = [t.strip() for t in taxonomy if t.strip()]
    if not labels:
        raise ValueError("instruction taxonomy is empty")
    return Instruction(version=version, text=template.format(labels=", ".join(labels)))
