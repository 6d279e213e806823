"""Deterministic offline judge: scores every annotation on S_rec, S_reason and S_cot.

* S_rec: set-level F1 of the annotation's labels against a reference when one is given
  (over-predicting labels costs precision). Without one: F1 against each other valid
  annotator (mean) blended with the label's compatibility with the face's action units
  (EMFACS prototypes), ``rules.peer_weight`` between the two.
* S_reason: every step but the last is checked against the features (``claims.py``); a
  step with a contradicted claim scores 0, a supported one 1, one with nothing checkable
  ``rules.unverifiable_step``. No reasoning before the label scores 0.
* S_cot: mean of coverage (share of ``Features.modalities`` the steps and cues discuss),
  grounding (cited cues and step claims that the features confirm, at the cited times)
  and form (well-formed ``Step 1..N``, N >= 2, the last naming the label).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from emoforge.agents.judge.claims import (
    Check,
    Outcome,
    au_value,
    check_claim,
    extract_claims,
    mentioned_modalities,
)
from emoforge.agents.judge.grounding import check_cue
from emoforge.agents.judge.verdicts import failed_verdict, make_verdict
from emoforge.configs.emotions import EMFACS_PROTOTYPES, SYNONYMS
from emoforge.configs.quality import JudgeConfig
from emoforge.storage.records import Annotation, Features, RunContext, Segment, Status, Verdict

_STEP = re.compile(r"^\s*step\s*(\d+)\s*[:.)-]\s*(.*)$", re.IGNORECASE | re.DOTALL)
_CREDIT: dict[Outcome, float] = {"supported": 1.0, "unverifiable": 0.5, "contradicted": 0.0}


def label_set(annotation: Annotation) -> set[str]:
    return set(annotation.labels) or ({annotation.primary_label} if annotation.primary_label else set())


def set_f1(predicted: set[str], reference: set[str]) -> float:
    """Set-level F1: 2|P ∩ R| / (|P| + |R|); extra labels lower precision, missing ones recall."""
    if not predicted or not reference:
        return 0.0
    return 2.0 * len(predicted & reference) / (len(predicted) + len(reference))


def label_words(label: str) -> list[str]:
    return [label, *(w for w, target in SYNONYMS.items() if target == label and len(w) >= 3 and w != label)]


def names_label(text: str, label: str) -> bool:
    return any(re.search(rf"(?i)\b{re.escape(w)}\b", text) for w in label_words(label))


def evidence_reading(features: Features, au_present: float) -> dict[str, float] | None:
    """Compatibility in [0, 1] of each label with the face's AUs, or None without AUs."""
    if "face" not in features.modalities:
        return None
    proto: dict[str, float] = {}
    for label, aus in EMFACS_PROTOTYPES.items():
        values = [v for au in aus if (v := au_value(features, au)) is not None]
        if values:
            proto[label] = sum(values) / len(values)
    if not proto:
        return None
    strongest = max(proto.values())
    reading = {**proto, "neutral": max(0.0, 1.0 - strongest / au_present)}
    top = max(reading.values())
    return {label: value / top for label, value in reading.items()} if top > 0 else None


def parse_steps(annotation: Annotation) -> list[tuple[int | None, str]]:
    """(number, body) per step; number None when the step is not 'Step k: ...'."""
    lines = annotation.rationale or [ln for ln in (annotation.raw_rationale or "").splitlines() if ln.strip()]
    out: list[tuple[int | None, str]] = []
    for line in lines:
        match = _STEP.match(line)
        out.append((int(match.group(1)), match.group(2)) if match else (None, line))
    return out


class RulesJudge:
    """The offline judge; ``score`` returns one Verdict per annotation, in order."""

    def __init__(self, config: JudgeConfig, ctx: RunContext) -> None:
        self.config = config
        self.ctx = ctx
        self.rules = config.rules
        w = config.weights[config.task]
        self.weights = [w.a, w.b, w.c]

    def score(
        self,
        segment: Segment,
        features: Features,
        annotations: list[Annotation],
        reference: str | Sequence[str] | None = None,
    ) -> list[Verdict]:
        ref = {reference} if isinstance(reference, str) else set(reference or ())
        valid = [a for a in annotations if a.status == Status.ok]
        reading = evidence_reading(features, self.rules.au_present)
        out = []
        for annotation in annotations:
            if annotation.status != Status.ok:
                out.append(failed_verdict(annotation, self.config, self.ctx, "rules"))
                continue
            notes: list[str] = []
            peers = [a for a in valid if a.id != annotation.id]
            s_rec = self._s_rec(annotation, peers, reading, ref, notes)
            steps = parse_steps(annotation)
            s_reason, step_checks = self._s_reason(steps, features, notes)
            s_cot = self._s_cot(annotation, steps, step_checks, segment, features, notes)
            out.append(make_verdict(annotation, self.config, self.ctx, "rules", s_rec, s_reason, s_cot, notes))
        return out

    # ------------------------------------------------------------------ S_rec

    def _s_rec(
        self,
        annotation: Annotation,
        peers: list[Annotation],
        reading: dict[str, float] | None,
        reference: set[str],
        notes: list[str],
    ) -> float:
        mine = label_set(annotation)
        if reference:
            score = set_f1(mine, reference)
            if score < 1.0:
                notes.append(f"S_rec: labels {sorted(mine)} vs reference {sorted(reference)} (F1 {score:.2f})")
            return score
        parts: list[tuple[float, float]] = []
        if peers:
            peer = sum(set_f1(mine, label_set(p)) for p in peers) / len(peers)
            parts.append((self.rules.peer_weight, peer))
            if peer < 0.5:
                notes.append(f"S_rec: other annotators mostly disagree (mean F1 {peer:.2f})")
        known = [label for label in mine if reading is not None and label in reading]
        if reading is not None and known:
            fit = sum(reading[label] for label in known) / len(known)
            parts.append((1.0 - self.rules.peer_weight, fit))
            if fit < 0.5:
                best = max(reading, key=lambda k: reading[k])
                notes.append(f"S_rec: face AUs fit {best!r} better than {sorted(known)} ({fit:.2f})")
        total = sum(w for w, _ in parts)
        if total == 0:
            notes.append("S_rec: no reference, peers or AU evidence to check the label against (0.5)")
            return 0.5
        return sum(w * v for w, v in parts) / total

    # ------------------------------------------------------------------ S_reason

    def _s_reason(
        self, steps: list[tuple[int | None, str]], features: Features, notes: list[str]
    ) -> tuple[float, list[Check]]:
        body = steps[:-1]
        if not body:
            notes.append("S_reason: no reasoning steps before the label")
            return 0.0, []
        scores, every = [], []
        for i, (_, text) in enumerate(body, start=1):
            checks = [check_claim(c, features, self.rules) for c in extract_claims(text)]
            every.extend(checks)
            wrong = [c for c in checks if c.outcome == "contradicted"]
            if wrong:
                notes.append(f"S_reason: step {i} contradicts the evidence: {wrong[0].claim.snippet!r}, {wrong[0].why}")
                scores.append(0.0)
            elif any(c.outcome == "supported" for c in checks):
                scores.append(1.0)
            else:
                scores.append(self.rules.unverifiable_step)
        return sum(scores) / len(scores), every

    # ------------------------------------------------------------------ S_cot

    def _s_cot(
        self,
        annotation: Annotation,
        steps: list[tuple[int | None, str]],
        step_checks: list[Check],
        segment: Segment,
        features: Features,
        notes: list[str],
    ) -> float:
        available = set(features.modalities)
        discussed: set[str] = {c.modality for c in annotation.evidence}
        for _, text in steps:
            discussed |= mentioned_modalities(text)
        if available:
            coverage = len(discussed & available) / len(available)
            if coverage < 1.0:
                notes.append(f"S_cot: reasoning ignores {sorted(available - discussed)}")
        else:
            coverage = 1.0
        outcomes = [c.outcome for c in step_checks]
        outcomes += [check_cue(cue, segment, features, self.rules, notes) for cue in annotation.evidence]
        if outcomes:
            grounding = sum(_CREDIT[o] for o in outcomes) / len(outcomes)
        else:
            grounding = 0.0
            notes.append("S_cot: cites no checkable evidence")
        form = self._form(annotation, steps, notes)
        return (coverage + grounding + form) / 3.0

    def _form(self, annotation: Annotation, steps: list[tuple[int | None, str]], notes: list[str]) -> float:
        if not steps:
            notes.append("S_cot: no steps")
            return 0.0
        in_place = sum(1 for i, (k, _) in enumerate(steps, start=1) if k == i) / len(steps)
        numbered = in_place * (1.0 if len(steps) >= 2 else 0.5)
        label = annotation.primary_label
        ends = 1.0 if label and names_label(steps[-1][1], label) else 0.0
        if numbered < 1.0:
            notes.append("S_cot: steps are not a well-formed 'Step 1..N' (N >= 2) sequence")
        if not ends:
            notes.append(f"S_cot: last step does not state the label {label!r}")
        return (numbered + ends) / 2.0
