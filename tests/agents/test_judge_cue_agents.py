"""The real offline cue agents are honest: the offline judge must find nothing to contradict."""

from __future__ import annotations

import pytest

from emoforge.agents.cues.face import FaceCueAnnotator
from emoforge.agents.cues.voice import VoiceCueAnnotator
from emoforge.agents.judge import Judge
from emoforge.agents.providers import vote_sources
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.configs.quality import AggregationConfig, JudgeConfig
from emoforge.quality.consensus import ConsensusBuilder
from emoforge.storage.records import Annotation, Features, Status
from tests.quality.records import CTX, SEGMENT, smiling_features


@pytest.fixture(scope="module")
def features() -> Features:
    base = smiling_features(with_text=False)
    assert base.prosody is not None
    prosody = base.prosody.model_copy(update={"f0_min_hz": 150.0, "f0_max_hz": 300.0, "intensity_sd_db": 7.0})
    return base.model_copy(update={"prosody": prosody})


@pytest.fixture(scope="module")
def jury(features: Features) -> list[Annotation]:
    taxonomy = TaxonomyConfig()
    face = FaceCueAnnotator(AgentConfig(name="face", backend="face_cues"), CTX, taxonomy)
    voice = VoiceCueAnnotator(AgentConfig(name="voice", backend="voice_cues"), CTX, taxonomy)
    return [face.annotate(SEGMENT, features), voice.annotate(SEGMENT, features)]


def test_cue_agents_are_judged_sound(features: Features, jury: list[Annotation]) -> None:
    assert [a.status for a in jury] == [Status.ok, Status.ok]
    verdicts = Judge(JudgeConfig(), CTX).score(SEGMENT, features, jury)
    for v in verdicts:
        assert not [n for n in v.notes if "contradict" in n or "S_cot: cue" in n], v.notes
        assert v.s_reason >= 0.5 and v.s_final > 0.6
    # Each single-modality agent covers one of the two available modalities, and says so.
    assert all(any("reasoning ignores" in n for n in v.notes) for v in verdicts)


def test_tampered_cue_agent_is_caught(features: Features, jury: list[Annotation]) -> None:
    face = jury[0]
    lie = face.model_copy(
        update={
            "id": f"{SEGMENT.id}-liar",
            "agent": "liar",
            "rationale": [
                face.rationale[0],
                "Step 2: There is no smile and the brows are furrowed.",
                *face.rationale[2:],
            ],
            "evidence": [c.model_copy(update={"value": 0.95}) for c in face.evidence],
        }
    )
    honest, liar = Judge(JudgeConfig(), CTX).score(SEGMENT, features, [face, lie])
    assert liar.s_reason < honest.s_reason and liar.s_cot < honest.s_cot
    consensus = ConsensusBuilder(AggregationConfig(), CTX, sources=vote_sources()).build(
        SEGMENT, features, [*jury, lie], Judge(JudgeConfig(), CTX).score(SEGMENT, features, [*jury, lie])
    )
    assert consensus.primary_label == "happy" and consensus.n_valid == 3
