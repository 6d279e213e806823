"""Judge: each score reacts to the flaw it names; failures are zero, flagged verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoforge.agents.base import AnnotatorError, ModelReply, Prompt
from emoforge.agents.cache import ResponseCache
from emoforge.agents.costs import CostLedger
from emoforge.agents.judge import Judge
from emoforge.agents.judge.claims import extract_claims
from emoforge.agents.judge.llm import case_data
from emoforge.configs.agents import AgentConfig, Price
from emoforge.configs.quality import JudgeConfig, JudgeWeights
from emoforge.storage.records import Cue, ErrorKind, Status, Usage
from tests.quality.records import CTX, GOOD_CUES, GOOD_STEPS, SEGMENT, annotation, failed, smiling_features


@pytest.fixture()
def judge() -> Judge:
    return Judge(JudgeConfig(), CTX)


def test_sound_annotation_scores_high(judge: Judge) -> None:
    (v,) = judge.score(SEGMENT, smiling_features(), [annotation("a", ["happy"])], reference="happy")
    assert (v.s_rec, v.s_reason, v.s_cot) == (1.0, 1.0, 1.0)
    assert v.s_final == pytest.approx(1.0) and v.status == Status.ok and v.notes == []
    assert v.id == f"{SEGMENT.id}-a-judge" and v.provenance.stage == "judge"


def test_step_contradicting_the_aus_scores_zero(judge: Judge) -> None:
    steps = ["Step 1: The brows are furrowed (AU4) and there is no smile.", "Step 2: So the label is angry."]
    (v,) = judge.score(SEGMENT, smiling_features(), [annotation("a", ["angry"], steps=steps, cues=[])])
    assert v.s_reason == 0.0
    assert any("step 1 contradicts" in n for n in v.notes)


def test_each_step_is_checked(judge: Judge) -> None:
    steps = [GOOD_STEPS[0], "Step 2: The voice is monotone.", "Step 3: The label is happy."]
    (v,) = judge.score(SEGMENT, smiling_features(), [annotation("a", ["happy"], steps=steps)])
    assert v.s_reason == pytest.approx(0.5)  # step 1 supported (1), step 2 contradicts F0 variation (0)


def test_missing_modality_lowers_s_cot(judge: Judge) -> None:
    face_only = annotation("b", ["happy"], steps=[GOOD_STEPS[0], "Step 2: So the label is happy."], cues=[GOOD_CUES[0]])
    full, partial = judge.score(SEGMENT, smiling_features(), [annotation("a", ["happy"]), face_only], reference="happy")
    assert partial.s_cot == pytest.approx(full.s_cot - 2 / 9)  # coverage 1/3 instead of 1
    assert any("ignores ['text', 'voice']" in n for n in partial.notes)
    # The same face-only reasoning is complete when the segment has only a face.
    (alone,) = judge.score(SEGMENT, smiling_features(with_voice=False, with_text=False), [face_only])
    assert alone.s_cot == pytest.approx(1.0)


def test_ungrounded_cues_lower_s_cot(judge: Judge) -> None:
    bad_cues = [
        Cue(modality="face", cue="AU12", start_s=9.0, end_s=9.5, feature="AU12"),  # outside the 0-4 s segment
        Cue(modality="voice", cue="jitter", feature="jitter_local"),  # never extracted
        Cue(modality="face", cue="AU12 at its peak", start_s=0.3, end_s=0.6, feature="AU12", value=0.9),
    ]
    good, bad = judge.score(
        SEGMENT, smiling_features(), [annotation("a", ["happy"]), annotation("b", ["happy"], cues=bad_cues)]
    )
    assert bad.s_cot < good.s_cot
    assert sum("S_cot: cue" in n for n in bad.notes) == 3  # at 0.3-0.6 s AU12 is only 0.17, not 0.9


def test_malformed_steps_lower_s_cot(judge: Judge) -> None:
    steps = ["The face smiles (AU12).", "Maybe."]  # no numbering, last step names no label
    good, bad = judge.score(
        SEGMENT, smiling_features(), [annotation("a", ["happy"]), annotation("b", ["happy"], steps=steps)]
    )
    assert bad.s_cot <= good.s_cot - 1 / 3 + 1e-9


def test_wrong_label_lowers_s_rec(judge: Judge) -> None:
    features = smiling_features()
    right, wrong = judge.score(
        SEGMENT, features, [annotation("a", ["happy"]), annotation("b", ["sad"])], reference="happy"
    )
    assert (right.s_rec, wrong.s_rec) == (1.0, 0.0)
    # Without a reference, the AUs still side with "happy" (peers split 1-1).
    right, wrong = judge.score(SEGMENT, features, [annotation("a", ["happy"]), annotation("b", ["sad"])])
    assert right.s_rec > 0.4 > wrong.s_rec


def test_multilabel_over_prediction_is_penalised(judge: Judge) -> None:
    verdicts = judge.score(
        SEGMENT,
        smiling_features(),
        [
            annotation("a", ["happy"]),
            annotation("b", ["happy", "surprised"]),
            annotation("c", ["happy", "sad", "angry", "surprised"]),
        ],
        reference=["happy", "surprised"],
    )
    assert [v.s_rec for v in verdicts] == pytest.approx([2 / 3, 1.0, 2 * 2 / 6])


def test_failed_annotation_gets_failed_zero_verdict(judge: Judge) -> None:
    verdicts = judge.score(SEGMENT, smiling_features(), [annotation("a", ["happy"]), failed("b")])
    assert len(verdicts) == 2
    v = verdicts[1]
    assert v.status == Status.failed and v.failure is not None and v.failure.stage == "judge"
    assert (v.s_rec, v.s_reason, v.s_cot, v.s_final) == (0.0, 0.0, 0.0, 0.0)
    assert "timeout" in v.failure.message


def test_weights_per_task() -> None:
    config = JudgeConfig(
        task="reasoning", weights={"default": JudgeWeights(), "reasoning": JudgeWeights(a=0.0, b=1.0, c=0.0)}
    )
    steps = [GOOD_STEPS[0], "Step 2: The voice is monotone.", "Step 3: The label is sad."]
    (v,) = Judge(config, CTX).score(SEGMENT, smiling_features(), [annotation("a", ["sad"], steps=steps)])
    assert v.s_final == pytest.approx(v.s_reason) and v.weights == [0.0, 1.0, 0.0] and v.task == "reasoning"
    with pytest.raises(ValueError, match="must equal 1"):
        JudgeWeights(a=0.5, b=0.5, c=0.5)


def test_claim_reader() -> None:
    claims = {(c.key, c.present) for c in extract_claims("No frown, but a broad smile; she speaks quickly.")}
    assert ("AU4", False) in claims and ("AU12", True) in claims
    claims = {(c.key, c.present) for c in extract_claims("Not loud; says 'hello there' with rising pitch")}
    assert claims == {("intensity", False), ("quote", True), ("f0_slope", True)}


# ---------------------------------------------------------------------- LLM judge (fake backend)


class ScriptedBackend:
    """Replays replies/errors in order; records the prompts it was sent."""

    name = "scripted"

    def __init__(self, script: list[str | ModelReply | AnnotatorError]) -> None:
        self.script = list(script)
        self.prompts: list[Prompt] = []

    def complete(self, prompt: Prompt, max_output_tokens: int, temperature: float) -> ModelReply:
        self.prompts.append(prompt)
        item = self.script.pop(0)
        if isinstance(item, AnnotatorError):
            raise item
        return item if isinstance(item, ModelReply) else ModelReply(text=item)

    def close(self) -> None:
        pass


VALID = json.dumps(
    {
        "s_rec": 0.9,
        "s_reason": 0.5,
        "s_cot": 0.25,
        "step_scores": [1, 0, 0.5],
        "notes": ["step 2 claims a monotone voice"],
    }
)
LLM_AGENT = AgentConfig(
    name="judge-llm", backend="openai_compatible", model="m", base_url="http://x", max_reasks=2, max_retries=2
)


def llm_judge(script: list[str | ModelReply | AnnotatorError]) -> tuple[Judge, ScriptedBackend]:
    backend = ScriptedBackend(script)
    judge = Judge(JudgeConfig(backend="llm", llm=LLM_AGENT), CTX, backend=backend)
    judge._impl.retry_policy.sleep = lambda s: None
    return judge, backend


def test_llm_judge_weights_the_model_scores() -> None:
    judge, backend = llm_judge([VALID])
    (v,) = judge.score(SEGMENT, smiling_features(), [annotation("a", ["happy"])], reference="happy")
    assert v.status == Status.ok and v.s_final == pytest.approx(0.4 * 0.9 + 0.3 * 0.5 + 0.3 * 0.25)
    sent = case_data(backend.prompts[0].user)  # the case travels as DATA inside <data>
    assert sent["reference_labels"] == ["happy"] and sent["evidence"]["au_peak"]["AU12"] == 0.85
    assert v.provenance.model == "m" and v.provenance.prompt_version == "judge-v2"


def test_llm_judge_reasks_then_fails_flagged() -> None:
    judge, backend = llm_judge(["not json", '{"s_rec": 2}', VALID])
    (v,) = judge.score(SEGMENT, smiling_features(), [annotation("a", ["happy"])])
    assert v.status == Status.ok and len(backend.prompts) == 3
    assert "invalid" in backend.prompts[2].messages_after[-1][1]
    judge, _ = llm_judge(["nope", "nope", "nope"])
    (v,) = judge.score(SEGMENT, smiling_features(), [annotation("a", ["happy"])])
    assert v.status == Status.failed and v.failure is not None
    assert v.failure.kind == ErrorKind.malformed_output and v.s_final == 0.0


def test_llm_judge_refusal_and_rate_limit() -> None:
    judge, _ = llm_judge([ModelReply(text="", refusal="I can't help with that")])
    (v,) = judge.score(SEGMENT, smiling_features(), [annotation("a", ["happy"])])
    assert v.status == Status.failed and v.failure is not None and v.failure.kind == ErrorKind.refusal
    judge, backend = llm_judge([AnnotatorError(ErrorKind.rate_limited, "429"), VALID])
    (v,) = judge.score(SEGMENT, smiling_features(), [annotation("a", ["happy"]), failed("b")])[:1]
    assert v.status == Status.ok and len(backend.prompts) == 2
    judge, _ = llm_judge([AnnotatorError(ErrorKind.invalid_input, "400 bad request")])
    (v,) = judge.score(SEGMENT, smiling_features(), [annotation("a", ["happy"])])
    assert v.status == Status.failed and v.failure is not None and v.failure.kind == ErrorKind.invalid_input


def test_llm_judge_verdicts_carry_their_spend_and_a_cached_rerun_spends_nothing(tmp_path: Path) -> None:
    priced = LLM_AGENT.model_copy(update={"price": Price(input_per_mtok=2.0, output_per_mtok=8.0)})
    reply = ModelReply(text=VALID, input_tokens=1000, output_tokens=100)
    cache = ResponseCache(tmp_path)
    judge = Judge(JudgeConfig(backend="llm", llm=priced), CTX, backend=ScriptedBackend(["not json", reply]))
    judge.use(CostLedger(None), cache)
    (v,) = judge.score(SEGMENT, smiling_features(), [annotation("a", ["happy"])])
    # Two calls (one re-ask); only the second reports tokens: 1000 * 2 + 100 * 8 per million.
    assert v.usage == Usage(calls=2, attempts=2, input_tokens=1000, output_tokens=100, cost_usd=0.0028,
                            latency_s=v.usage.latency_s)  # fmt: skip
    again = Judge(JudgeConfig(backend="llm", llm=priced), CTX, backend=ScriptedBackend([]))
    again.use(CostLedger(None), cache)
    (w,) = again.score(SEGMENT, smiling_features(), [annotation("a", ["happy"])])
    assert w.usage == Usage(cached=True) and w.s_final == v.s_final
    (rules,) = Judge(JudgeConfig(), CTX).score(SEGMENT, smiling_features(), [annotation("a", ["happy"])])
    assert rules.usage is None  # the offline judge spends nothing


def test_llm_judge_needs_an_agent() -> None:
    with pytest.raises(ValueError, match=r"judge\.llm"):
        Judge(JudgeConfig(backend="llm", agent="gpt"), CTX)


step_text = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz AU0123456789.,;:'\"-()")), max_size=80
) | st.sampled_from([*GOOD_STEPS, "no smile", "not loud", "says 'hi'", "AU99 strong", "Step 1:", "step 2 - "])


@settings(max_examples=80, deadline=None)
@given(
    st.lists(step_text, max_size=5),
    st.lists(
        st.sampled_from(
            [
                *GOOD_CUES,
                Cue(modality="visual", cue="dark room"),
                Cue(modality="voice", cue="x", feature="nonsense", value=3.0),
            ]
        ),
        max_size=4,
    ),
    st.lists(st.sampled_from(["happy", "sad", "angry", "neutral", "bored"]), min_size=1, max_size=3, unique=True),
    st.booleans(),
    st.booleans(),
)
def test_judge_never_raises_and_stays_in_bounds(
    steps: list[str], cues: list[Cue], labels: list[str], with_voice: bool, with_text: bool
) -> None:
    features = smiling_features(with_voice=with_voice, with_text=with_text)
    jury = [annotation("a", labels, steps=steps, cues=cues), annotation("b", ["happy"]), failed("c")]
    verdicts = Judge(JudgeConfig(), CTX).score(SEGMENT, features, jury)
    assert [v.annotation_id for v in verdicts] == [a.id for a in jury]
    for v in verdicts:
        for s in (v.s_rec, v.s_reason, v.s_cot, v.s_final):
            assert 0.0 <= s <= 1.0
        assert v.s_final == pytest.approx(0.4 * v.s_rec + 0.3 * v.s_reason + 0.3 * v.s_cot)
