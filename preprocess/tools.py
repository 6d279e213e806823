"""The preprocessing tools, in the order the extractor runs them: one line per tool.

Each spec lives beside its tool (``TOOL`` in the tool's module, see ``preprocess/tool.py``);
this is the one place that lists them. A tool whose spec has a ``build`` is run on every
segment by the extractor in this order, after the recording-level tools; the timeline stays
last, since it summarises what the others filled.
"""

from __future__ import annotations

from emoforge.preprocess import asr, aus_landmarks, denoise, faces, keyframes, prosody, speakers, timeline
from emoforge.preprocess.tool import ToolSpec

TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        denoise.TOOL,
        speakers.TOOL,
        asr.TOOL,
        prosody.TOOL,
        faces.TOOL,
        aus_landmarks.TOOL,
        keyframes.TOOL,
        timeline.TOOL,
    )
}
