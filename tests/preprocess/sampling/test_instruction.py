"""The instruction paired with each segment: versioned, names the labels, asks for evidence."""

from __future__ import annotations

import pytest

from emoforge.configs.sampling import DEFAULT_TAXONOMY
from emoforge.preprocess.sampling.instruction import instruction_versions, render_instruction


def test_render_v1() -> None:
    inst = render_instruction("emo-cot-v1", DEFAULT_TAXONOMY)
    assert inst.version == "emo-cot-v1"
    text = inst.text.lower()
    assert "most prominent emotion" in text and "step by step" in text
    for modality in ("visual", "acoustic", "textual"):
        assert f"{modality} evidence" in text
    assert "neutral, happy, sad, angry, fearful, disgusted, surprised" in inst.text
    assert render_instruction("emo-cot-v1", DEFAULT_TAXONOMY) == inst  # stable text for stable rows


def test_unknown_version_and_empty_taxonomy() -> None:
    assert "emo-cot-v1" in instruction_versions()
    with pytest.raises(ValueError, match="unknown instruction version"):
        render_instruction("emo-cot-v0", DEFAULT_TAXONOMY)
    with pytest.raises(ValueError, match="empty"):
        render_instruction("emo-cot-v1", [" "])
