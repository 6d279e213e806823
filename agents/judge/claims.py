"""What a rationale claims, and whether the extracted features bear it out.

A reasoning step is free text; the offline judge reads checkable claims out of it with a
small FACS/prosody lexicon ("smiling" -> AU12 present, "monotone" -> low F0 variation,
a quoted phrase -> must occur in the transcript) and checks each against ``Features``.
A claim is ``supported``, ``contradicted`` (the features say otherwise, or it cites a
modality the segment does not have) or ``unverifiable`` (no feature to check it, or the
value sits between the present/absent thresholds).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from emoforge.configs.quality import RulesJudgeConfig
from emoforge.storage.records import Features, Prosody

Outcome = Literal["supported", "contradicted", "unverifiable"]

# Facial descriptions -> the action units they name (EMFACS vocabulary).
FACE_TERMS: tuple[tuple[str, tuple[int, ...]], ...] = (
    (r"smil\w*|lip[- ]corner pull\w*|grin\w*", (12,)),
    (r"cheek rais\w*|raised cheeks?", (6,)),
    (r"frown\w*|furrow\w*|brows? (?:are |is )?(?:lower|knit|drawn)\w*|lowered brows?", (4,)),
    (r"inner brows? rais\w*", (1,)),
    (r"(?:eye)?brows? (?:are |is )?(?:rais\w*|up)|raised (?:eye)?brows?", (1, 2)),
    (r"wide[- ]?(?:open )?eyes|eyes (?:wide|widened)|upper lids? rais\w*", (5,)),
    (r"lids? tighten\w*|squint\w*", (7,)),
    (r"nose wrinkl\w*|wrinkl\w* (?:the |her |his )?nose", (9,)),
    (r"upper lip rais\w*", (10,)),
    (r"lip corners? (?:depress\w*|down\w*)|down-?turned (?:mouth|lips)|mouth corners? down\w*", (15,)),
    (r"lip stretch\w*", (20,)),
    (r"lips? (?:press\w*|tighten\w*)|pressed lips|tight lips", (23, 24)),
    (r"jaw (?:is )?drop\w*|mouth (?:is )?(?:open|agape)|open mouth|dropped jaw", (26,)),
)
_AU = re.compile(r"\bAU\s*0*(\d{1,2})\b(?:\s*(?:=|:)\s*(-?\d+(?:\.\d+)?))?", re.IGNORECASE)
_MEASURE = re.compile(r"\b([a-z][a-z0-9_]*[a-z0-9])\s*=\s*(-?\d+(?:\.\d+)?)")
_NEGATION = re.compile(
    r"\b(?:no|not|without|absent|absence of|lack\w* of|lacks|neither|nor|never|little|minimal|n't)\b",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[,;.:!?]|\b(?:but|while|whereas|although|however)\b", re.IGNORECASE)
_QUOTE = re.compile(r"[\"“”«»]([^\"“”«»]{3,200})[\"“”«»]|(?<![A-Za-z])'([^']{3,200})'(?![A-Za-z])")
_WORD = re.compile(r"[\w']+", re.UNICODE)

# Voice claims: (pattern, feature key, polarity: True = high/present).
VOICE_TERMS: tuple[tuple[str, str, bool], ...] = (
    (r"monoton\w*|flat (?:pitch|intonation|voice|prosody)|little pitch variation", "f0_variation", False),
    (
        r"(?:varied|variable|animated|expressive|wide|large) (?:pitch|intonation)"
        r"|pitch (?:varies|fluctuat\w*|is (?:varied|variable|animated|expressive|lively))",
        "f0_variation",
        True,
    ),
    (r"loud(?:ly|er)?\b|shout\w*|yell\w*|raised voice|high (?:intensity|volume)", "intensity", True),
    (r"quiet(?:ly|er)?\b|soft(?:ly)? spoken|soft voice|whisper\w*|low (?:intensity|volume)", "intensity", False),
    (
        r"(?:fast|rapid|quick|hurried) (?:speech|speaking|pace|tempo|rate)|speaks (?:fast|quickly|rapidly)",
        "speech_rate",
        True,
    ),
    (r"slow (?:speech|speaking|pace|tempo|rate)|speaks slowly|slowly", "speech_rate", False),
    (r"rising (?:pitch|intonation|f0)|pitch (?:rises|rising|goes up)", "f0_slope", True),
    (r"falling (?:pitch|intonation|f0)|pitch (?:falls|falling|drops|goes down)", "f0_slope", False),
    (r"pauses?\b|hesitat\w*", "pauses", True),
)

MODALITY_WORDS: dict[str, re.Pattern[str]] = {
    "face": re.compile(
        r"\b(?:face|facial|expression|smil\w*|brows?|eyebrows?|eyes?|mouth|lips?|cheeks?|jaw|frown\w*|"
        r"AU\s*\d+)\b",
        re.IGNORECASE,
    ),
    "voice": re.compile(
        r"\b(?:voice|vocal|pitch|tone|prosod\w*|intonation|loud\w*|quiet\w*|f0|speech rate|pace|"
        r"shout\w*|whisper\w*|monoton\w*)\b",
        re.IGNORECASE,
    ),
    "text": re.compile(
        r"\b(?:transcript|says?|said|saying|words?|utterance|sentence|phrase|states?|asks?|text)\b",
        re.IGNORECASE,
    ),
}


@dataclass(frozen=True)
class Claim:
    """One checkable statement read out of a step or a cited cue."""

    modality: Literal["face", "voice", "text"]
    key: str  # "AU12", "f0_variation", "intensity", "speech_rate", "f0_slope", "pauses", "quote", a feature
    present: bool
    snippet: str
    value: float | None = None  # a measurement claim ("AU12=0.50", "f0_cv=0.21"): check the number


@dataclass(frozen=True)
class Check:
    claim: Claim
    outcome: Outcome
    why: str


def _negated(clause_before: str) -> bool:
    # Only the few words right before the match, so "no frown, a clear smile" stays positive.
    words = clause_before.split()[-4:]
    return _NEGATION.search(" ".join(words)) is not None


def _clause_prefix(text: str, start: int) -> str:
    head = text[:start]
    cuts = [m.end() for m in _CLAUSE.finditer(head)]
    return head[cuts[-1] :] if cuts else head


def extract_claims(text: str) -> list[Claim]:
    """Checkable claims in one step or cue text, in order of appearance."""
    found: list[tuple[int, Claim]] = []
    taken: list[tuple[int, int]] = []

    def add(start: int, end: int, *claims: Claim) -> None:
        if any(s < end and start < e for s, e in taken):
            return  # an earlier, more specific pattern already covers this span
        taken.append((start, end))
        found.extend((start, claim) for claim in claims)

    for match in _QUOTE.finditer(text):
        quote = match.group(1) or match.group(2) or ""
        add(match.start(), match.end(), Claim("text", "quote", True, quote.strip()))
    for match in _AU.finditer(text):
        if text[match.end() : match.end() + 1] == "+" or text[max(0, match.start() - 1) : match.start()] == "+":
            continue  # "AU6+AU12" names a prototype (a formula); it does not claim the AUs are present
        present = not _negated(_clause_prefix(text, match.start()))
        value = float(match.group(2)) if match.group(2) else None
        add(match.start(), match.end(), Claim("face", f"AU{int(match.group(1))}", present, match.group(0), value))
    for match in _MEASURE.finditer(text):
        if match.group(1) in PROSODY_KEYS:
            add(match.start(), match.end(), Claim("voice", match.group(1), True, match.group(0), float(match.group(2))))
    for pattern, aus in FACE_TERMS:
        for match in re.finditer(rf"\b(?:{pattern})", text, re.IGNORECASE):
            present = not _negated(_clause_prefix(text, match.start()))
            add(match.start(), match.end(), *(Claim("face", f"AU{au}", present, match.group(0)) for au in aus))
    for pattern, key, high in VOICE_TERMS:
        for match in re.finditer(rf"\b(?:{pattern})", text, re.IGNORECASE):
            negated = _negated(_clause_prefix(text, match.start()))
            add(match.start(), match.end(), Claim("voice", key, high != negated, match.group(0)))
    unique: dict[tuple[str, str, bool], Claim] = {}
    for _, claim in sorted(found, key=lambda item: item[0]):
        unique.setdefault((claim.modality, claim.key if claim.key != "quote" else claim.snippet, claim.present), claim)
    return list(unique.values())


def mentioned_modalities(text: str) -> set[str]:
    return {name for name, pattern in MODALITY_WORDS.items() if pattern.search(text)}


def au_in(values: dict[str, float], au: str) -> float | None:
    """``values[au]`` whatever the estimator's key spelling (AU06, AU6_r, au12)."""
    want = int(au[2:])
    for key, value in values.items():
        match = _AU.search(key.replace("_", " "))
        if match and int(match.group(1)) == want:
            return value
    return None


def au_value(features: Features, au: str) -> float | None:
    """Peak (else mean) intensity of ``au`` over the segment, None when not measured."""
    face = features.face
    if face is None:
        return None
    for table in (face.au_peak, face.au_mean):
        value = au_in(table, au)
        if value is not None:
            return value
    return None


PROSODY_KEYS = frozenset({*Prosody.model_fields, "f0_cv", "f0_range_st"} - {"frames"})


def feature_candidates(features: Features, key: str) -> list[float] | None:
    """Values a cited feature may legitimately refer to (an AU's mean and peak; a prosody field,
    or one derived from them: ``f0_cv`` = sd/mean, ``f0_range_st`` = 12 log2(max/min); a
    face geometry or head-pose entry). None when the feature is unknown here; [] when it is
    known but was not extracted for this segment."""
    au = _AU.match(key.replace("_", " ").strip())
    if au:
        face = features.face
        if face is None:
            return []
        name = f"AU{int(au.group(1))}"
        return [v for v in (au_in(face.au_mean, name), au_in(face.au_peak, name)) if v is not None]
    if key in PROSODY_KEYS:
        p = features.prosody
        if p is None:
            return []
        if key == "f0_cv":
            value = p.f0_sd_hz / p.f0_mean_hz if p.f0_sd_hz is not None and p.f0_mean_hz else None
        elif key == "f0_range_st":
            lo, hi = p.f0_min_hz, p.f0_max_hz
            value = 12.0 * math.log2(hi / lo) if lo is not None and hi is not None and hi > lo > 0 else None
        else:
            raw = getattr(p, key)
            value = float(raw) if isinstance(raw, int | float) else None
        return [] if value is None else [value]
    face = features.face
    if face is not None and (key in face.geometry or key in face.head_pose_deg):
        return [face.geometry.get(key, face.head_pose_deg.get(key, 0.0))]
    return None


def value_matches(cited: float, candidates: list[float], tolerance: float) -> bool:
    return any(abs(cited - c) <= tolerance * max(abs(c), 1.0) for c in candidates)


def _normalise_text(text: str) -> str:
    return " ".join(w.lower() for w in _WORD.findall(text))


def _grade(value: float | None, low: float, high: float, present: bool, name: str) -> tuple[Outcome, str]:
    if value is None:
        return "unverifiable", f"{name} not measured"
    if value >= high:
        return ("supported" if present else "contradicted"), f"{name}={value:.3g} is high"
    if value <= low:
        return ("contradicted" if present else "supported"), f"{name}={value:.3g} is low"
    return "unverifiable", f"{name}={value:.3g} is between thresholds"


def check_claim(claim: Claim, features: Features, rules: RulesJudgeConfig) -> Check:
    """Grade one claim against the segment's features."""
    available = set(features.modalities)
    if claim.modality not in available:
        return Check(claim, "contradicted", f"cites {claim.modality} evidence the segment does not have")
    if claim.value is not None:
        candidates = feature_candidates(features, claim.key) or []
        if not candidates:
            return Check(claim, "unverifiable", f"{claim.key} not measured")
        if value_matches(claim.value, candidates, rules.value_tolerance):
            return Check(claim, "supported", f"{claim.key} measured {candidates[0]:.3g}")
        return Check(claim, "contradicted", f"{claim.key}={claim.value:g} but measured {candidates[0]:.3g}")
    if claim.modality == "face":
        value = au_value(features, claim.key)
        outcome, why = _grade(value, rules.au_absent, rules.au_present, claim.present, claim.key)
        return Check(claim, outcome, why)
    if claim.modality == "text":
        transcript = features.transcript.text if features.transcript is not None else ""
        quote = _normalise_text(claim.snippet)
        if quote and quote in _normalise_text(transcript):
            return Check(claim, "supported", "quote found in transcript")
        return Check(claim, "contradicted", f"quote {claim.snippet[:40]!r} not in transcript")
    prosody = features.prosody
    if prosody is None:  # modalities says voice is available, so this is unreachable in practice
        return Check(claim, "unverifiable", "no prosody")
    if claim.key == "f0_variation":
        cv = prosody.f0_sd_hz / prosody.f0_mean_hz if prosody.f0_sd_hz is not None and prosody.f0_mean_hz else None
        outcome, why = _grade(cv, rules.f0_cv_monotone, rules.f0_cv_varied, claim.present, "F0 sd/mean")
    elif claim.key == "intensity":
        outcome, why = _grade(prosody.intensity_mean_db, rules.quiet_db, rules.loud_db, claim.present, "intensity dB")
    elif claim.key == "speech_rate":
        outcome, why = _grade(prosody.speech_rate_wps, rules.slow_wps, rules.fast_wps, claim.present, "words/s")
    elif claim.key == "f0_slope":
        slope = prosody.f0_slope_hz_s
        outcome, why = _grade(slope, -rules.slope_hz_s, rules.slope_hz_s, claim.present, "F0 slope Hz/s")
    else:  # pauses
        count = None if prosody.pause_count is None else float(prosody.pause_count)
        outcome, why = _grade(count, 0.0, 1.0, claim.present, "pauses")
    return Check(claim, outcome, why)
