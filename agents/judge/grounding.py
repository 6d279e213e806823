"""Evidence grounding of cited cues: do they exist in the features, at the cited times?"""

from __future__ import annotations

import re

from emoforge.agents.judge.claims import (
    Outcome,
    au_in,
    check_claim,
    extract_claims,
    feature_candidates,
    value_matches,
)
from emoforge.configs.quality import RulesJudgeConfig
from emoforge.storage.records import Cue, Features, Segment


def check_cue(cue: Cue, segment: Segment, features: Features, rules: RulesJudgeConfig, notes: list[str]) -> Outcome:
    """Is a cited cue grounded: its modality available, its times inside the segment, its feature
    extracted with (about) the cited value, or else its text's claims borne out?"""
    tol = rules.time_tolerance_s
    if cue.modality in ("face", "voice", "text") and cue.modality not in features.modalities:
        notes.append(f"S_cot: cue {cue.cue!r} cites {cue.modality}, which the segment lacks")
        return "contradicted"
    for t in (cue.start_s, cue.end_s):
        if t is not None and not (segment.start_s - tol <= t <= segment.end_s + tol):
            notes.append(f"S_cot: cue {cue.cue!r} cites t={t:.2f}s outside the segment")
            return "contradicted"
    if cue.feature:
        candidates = feature_values(cue, features, rules)
        if candidates is not None:  # a feature we know: it must exist, with about the cited value
            if not candidates:
                notes.append(f"S_cot: cue cites feature {cue.feature!r}, which was not extracted here")
                return "contradicted"
            if cue.value is not None and not value_matches(cue.value, candidates, rules.value_tolerance):
                notes.append(f"S_cot: cue {cue.feature}={cue.value:g} but the feature is {candidates[0]:.3g}")
                return "contradicted"
            return "supported"
    checks = [check_claim(c, features, rules) for c in extract_claims(cue.cue)]
    if any(c.outcome == "contradicted" for c in checks):
        return "contradicted"
    return "supported" if any(c.outcome == "supported" for c in checks) else "unverifiable"


def feature_values(cue: Cue, features: Features, rules: RulesJudgeConfig) -> list[float] | None:
    """Candidate values of the cited feature (see ``feature_candidates``); for an AU cited at
    given times, the AU's values in the frames inside that span ("at the cited times")."""
    key = cue.feature or ""
    face = features.face
    au = re.match(r"(?i)^AU[\s_]*0*(\d+)", key)
    if au and face is not None and face.au_frames and cue.start_s is not None:
        lo = cue.start_s - rules.time_tolerance_s
        hi = (cue.end_s if cue.end_s is not None else cue.start_s) + rules.time_tolerance_s
        name = f"AU{int(au.group(1))}"
        in_span = [v for f in face.au_frames if lo <= f.t_s <= hi and (v := au_in(f.values, name)) is not None]
        if in_span:
            # The frames in the span, plus the segment mean an annotator may quote beside its peak time.
            mean = au_in(face.au_mean, name)
            return in_span + ([mean] if mean is not None else [])
        return []
    return feature_candidates(features, key)
