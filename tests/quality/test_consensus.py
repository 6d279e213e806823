"""Consensus: vote maths, judge weighting and every review flag."""

from __future__ import annotations

import math

import pytest

from emoforge.agents.judge import Judge
from emoforge.agents.providers import vote_sources
from emoforge.configs.quality import AggregationConfig, JudgeConfig
from emoforge.quality.consensus import ConsensusBuilder
from emoforge.storage.records import Annotation, Consensus, ErrorKind, Failure, Status, Verdict

from .records import CTX, SEGMENT, annotation, failed, smiling_features


def verdict(a: Annotation, s_final: float, status: Status = Status.ok) -> Verdict:
    return Verdict(
        id=f"{a.id}-judge",
        annotation_id=a.id,
        judge="judge",
        s_rec=s_final,
        s_reason=s_final,
        s_cot=s_final,
        s_final=s_final,
        weights=[0.4, 0.3, 0.3],
        status=status,
        failure=Failure(stage="judge", kind=ErrorKind.malformed_output, message="bad json")
        if status == Status.failed
        else None,
        provenance=CTX.provenance(stage="judge", model="rules"),
    )


def build(
    annotations: list[Annotation], scores: list[float] | None, method: str = "weighted", **review: object
) -> Consensus:
    config = AggregationConfig.model_validate({"method": method, "review": review})
    verdicts = [] if scores is None else [verdict(a, s) for a, s in zip(annotations, scores, strict=False)]
    return ConsensusBuilder(config, CTX, sources=vote_sources()).build(
        SEGMENT, smiling_features(), annotations, verdicts
    )


def test_unanimous_jury_needs_no_review() -> None:
    jury = [annotation(n, ["happy"], valence=0.7) for n in ("a", "b", "c")]
    c = build(jury, [0.9, 0.8, 0.9])
    assert (c.primary_label, c.confidence, c.entropy, c.agreement) == ("happy", 1.0, 0.0, 1.0)
    assert c.needs_review is False and c.review_reasons == [] and c.method == "weighted"
    assert c.valence == pytest.approx(0.7) and c.n_valid == 3 and c.labels == ["happy"]


def test_judge_weights_can_overturn_the_majority() -> None:
    jury = [annotation("a", ["sad"]), annotation("b", ["sad"]), annotation("c", ["happy"])]
    weighted = build(jury, [0.1, 0.1, 0.9])
    assert weighted.primary_label == "happy"
    assert weighted.distribution == pytest.approx({"happy": 0.9 / 1.1, "sad": 0.2 / 1.1})
    assert weighted.agreement == pytest.approx(1 / 3)
    assert "annotator_conflict" in " ".join(weighted.review_reasons)
    assert "low_judge_score" in " ".join(weighted.review_reasons)  # mean 0.37 < 0.4
    plain = build(jury, [0.1, 0.1, 0.9], method="majority")
    assert plain.primary_label == "sad" and plain.confidence == pytest.approx(2 / 3)


def test_missing_verdicts_fall_back_to_majority() -> None:
    jury = [annotation("a", ["sad"]), annotation("b", ["sad"]), annotation("c", ["happy"])]
    c = build(jury, None)
    assert c.method == "majority" and c.primary_label == "sad"


def test_three_way_split_is_uncertain() -> None:
    jury = [annotation("a", ["happy"]), annotation("b", ["sad"]), annotation("c", ["angry"])]
    c = build(jury, [0.8, 0.8, 0.8])
    assert c.entropy == pytest.approx(math.log2(3))
    assert c.confidence == pytest.approx(1 / 3)
    kinds = {r.split(":")[0] for r in c.review_reasons}
    assert {"low_confidence", "annotator_conflict"} <= kinds


def test_too_few_valid_annotations() -> None:
    jury = [annotation("a", ["happy"]), failed("b"), failed("c")]
    c = build(jury, [0.9, 0.0, 0.0])
    assert c.n_annotations == 3 and c.n_valid == 1 and c.primary_label == "happy"
    assert c.review_reasons[0].startswith("too_few_valid: 1 of 3")


def test_all_failed_gives_no_label() -> None:
    c = build([failed("a"), failed("b")], [0.0, 0.0])
    assert c.primary_label is None and c.confidence == 0.0 and c.entropy == 0.0 and c.needs_review


def test_failed_judgement_is_flagged() -> None:
    jury = [annotation(n, ["happy"]) for n in ("a", "b", "c")]
    verdicts = [verdict(jury[0], 0.9), verdict(jury[1], 0.9), verdict(jury[2], 0.0, Status.failed)]
    c = ConsensusBuilder(AggregationConfig(), CTX, sources=vote_sources()).build(
        SEGMENT, smiling_features(), jury, verdicts
    )
    assert any(r.startswith("judge_failed: 1") for r in c.review_reasons)


def test_smiling_face_with_sad_voice_is_a_modality_conflict() -> None:
    face = annotation("face", ["happy"], modalities=["face"]).model_copy(update={"backend": "face_cues"})
    voice = annotation("voice", ["sad"], modalities=["voice"]).model_copy(update={"backend": "voice_cues"})
    text = annotation("text", ["happy"], modalities=["text"]).model_copy(update={"backend": "text_cues"})
    c = build([face, voice, text], [0.8, 0.8, 0.8])
    conflicts = [r for r in c.review_reasons if r.startswith("modality_conflict")]
    assert conflicts == [
        "modality_conflict: face=happy (+0.80) vs voice=sad (-0.70)",
        "modality_conflict: text=happy (+0.80) vs voice=sad (-0.70)",
    ]
    off = build([face, voice, text], [0.8, 0.8, 0.8], flag_modality_conflict=False)
    assert not any(r.startswith("modality_conflict") for r in off.review_reasons)


def test_multilabel_set_and_weighted_means() -> None:
    jury = [
        annotation("a", ["happy", "surprised"], valence=0.8),
        annotation("b", ["happy"], valence=0.4),
        annotation("c", ["surprised", "happy"], valence=0.0),
    ]
    c = build(jury, [1.0, 0.5, 0.5])
    assert c.primary_label == "happy" and c.labels == ["happy", "surprised"]  # surprised: 1.5/2 of weight
    assert c.valence == pytest.approx((0.8 * 1.0 + 0.4 * 0.5 + 0.0 * 0.5) / 2.0)


def test_judge_then_consensus_downweights_contradicted_reasoning() -> None:
    """End to end with the real offline judge: the annotator whose steps contradict the AUs
    loses the vote even though it is not outnumbered."""
    steps = ["Step 1: The brows are furrowed (AU4) and there is no smile.", "Step 2: Therefore sad."]
    jury = [annotation("a", ["happy"]), annotation("b", ["sad"], steps=steps, cues=[])]
    features = smiling_features()
    verdicts = Judge(JudgeConfig(), CTX).score(SEGMENT, features, jury)
    c = ConsensusBuilder(AggregationConfig(), CTX, sources=vote_sources()).build(SEGMENT, features, jury, verdicts)
    # Both say 0.8; the judge leaves happy near 0.8 * 0.8 and the contradicted sad vote near
    # 0.8 * 0.14, so happy wins clearly and sad keeps little more than a label nobody gave.
    assert c.primary_label == "happy" and c.confidence > 0.6
    assert c.distribution["sad"] < 2 * c.distribution["neutral"]
    undiscounted = ConsensusBuilder(AggregationConfig(judge_discount=False), CTX, sources=vote_sources()).build(
        SEGMENT, features, jury, verdicts
    )
    assert undiscounted.distribution["sad"] > 3 * c.distribution["sad"]


def test_a_label_resting_only_on_off_domain_votes_is_flagged_and_names_them() -> None:
    from emoforge.storage.records import DomainCheck

    def check(trust: float) -> DomainCheck:
        return DomainCheck(
            distance=1.0, residual=40.0, trust=trust, min_trust=0.3, off_domain=trust < 0.3, reference="acted speech"
        )

    def vote(name: str, label: str, confidence: float, trust: float | None) -> Annotation:
        return annotation(name, [label], modalities=["voice" if name == "voice" else "text"]).model_copy(
            update={
                "backend": f"{name}_model",
                "confidence": confidence,
                "domain": None if trust is None else check(trust),
            }
        )

    def off(jury: list[Annotation], **review: object) -> list[str]:
        return [r for r in build(jury, None, "pooled", **review).review_reasons if r.startswith("off_domain")]

    # The off-domain voice is outvoted by the in-domain text: the label stands on the text.
    assert off([vote("voice", "angry", 0.2, 0.05), vote("text", "happy", 0.8, 0.9)]) == []
    # It agrees with the in-domain text: not only off-domain votes behind the label.
    assert off([vote("voice", "happy", 0.3, 0.05), vote("text", "happy", 0.8, 0.9)]) == []
    # The label is the off-domain voice's alone (the text is off-domain too, or silent on it).
    c = build([vote("voice", "angry", 0.6, 0.05), vote("text", "happy", 0.2, 0.1)], None, "pooled")
    assert c.primary_label == "angry"
    assert [r for r in c.review_reasons if r.startswith("off_domain")] == ["off_domain: voice trust 0.05 < 0.30"]
    # An agent that declares no domain (an LLM) is no doubt of this kind.
    assert off([vote("voice", "angry", 0.6, 0.05), vote("llm", "angry", 0.7, None)]) == []
    assert off([vote("voice", "angry", 0.6, 0.05), vote("text", "happy", 0.2, 0.1)], flag_off_domain=False) == []
