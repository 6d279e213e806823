"""Compact per-modality evidence text from a segment's aligned features (all in recording time).

Words, prosody frames, AU frames and key frames already share the recording clock in
``Features``; this module reads across them and writes what an annotator would note, e.g.
``AU12 + AU6 peak at 3.20 s`` or ``F0 rises 40 Hz on 'really' (3.10 s)``. Only facts
that pass simple thresholds are stated, so an empty modality says so instead of padding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emoforge.preprocess.media import Media
from emoforge.preprocess.tool import ToolSpec
from emoforge.storage.records import AUFrame, Evidence, Features, ProsodyFrame, Segment, Word

AU_ACTIVE = 0.25  # mean intensity from which an AU is worth naming
WORD_F0_DELTA_HZ = 20.0  # a word's F0 this far from the segment median is named


def word_f0(words: list[Word], frames: list[ProsodyFrame]) -> list[tuple[Word, float]]:
    """Mean voiced F0 of each word (words with no voiced frame are left out)."""
    out = []
    for w in words:
        f0 = [f.f0_hz for f in frames if f.f0_hz and w.start_s <= f.t_s <= w.end_s]
        if f0:
            out.append((w, float(np.mean(f0))))
    return out


def co_peak(au_frames: list[AUFrame], names: list[str]) -> AUFrame | None:
    """The frame where the named AUs' summed intensity is highest."""
    if not au_frames or not names:
        return None
    return max(au_frames, key=lambda f: sum(f.values.get(n, 0.0) for n in names))


class EvidenceSummarizer:
    """Writes ``Features.evidence``: one short paragraph per modality."""

    model_id: str | None = None

    def fill(self, media: Media, segment: Segment, features: Features) -> dict[str, Any] | None:
        return {"evidence": self.summarize(features)}

    def summarize(self, features: Features) -> Evidence:
        return Evidence(face=self._face(features), voice=self._voice(features), text=self._text(features))

    @staticmethod
    def _face(f: Features) -> str | None:
        face = f.face
        if face is None:
            return None
        if face.frames_with_face == 0:
            return f"no face found in {face.frames_sampled} sampled frames"
        parts = [f"face in {face.frames_with_face}/{face.frames_sampled} frames (max {face.faces_max} faces)"]
        active = sorted((k for k, v in face.au_mean.items() if v >= AU_ACTIVE), key=lambda k: -face.au_mean[k])[:3]
        if active:
            desc = ", ".join(f"{k} {face.au_mean[k]:.2f} (peak {face.au_peak.get(k, 0):.2f})" for k in active)
            parts.append(f"AUs ({face.au_backend}): {desc}")
            peak = co_peak(face.au_frames, active[:2])
            if peak is not None:
                parts.append(f"{' + '.join(active[:2])} peak at {peak.t_s:.2f} s")
        else:
            parts.append(f"no AU above {AU_ACTIVE} ({face.au_backend}): near-neutral face")
        if face.head_pose_deg:
            pose = face.head_pose_deg
            parts.append(
                f"head yaw {pose.get('yaw', 0):+.0f}°, pitch {pose.get('pitch', 0):+.0f}°, "
                f"roll {pose.get('roll', 0):+.0f}°"
            )
        if f.peak_t_s is not None:
            parts.append(f"key peak frame at {f.peak_t_s:.2f} s")
        return "; ".join(parts)

    @staticmethod
    def _voice(f: Features) -> str | None:
        p = f.prosody
        if p is None:
            return None
        if not p.voiced_fraction or p.f0_mean_hz is None:
            return "no voiced speech"
        parts = [
            f"F0 mean {p.f0_mean_hz:.0f} Hz (sd {p.f0_sd_hz or 0:.0f}, "
            f"range {p.f0_min_hz or 0:.0f}-{p.f0_max_hz or 0:.0f})"
        ]
        if p.f0_slope_hz_s is not None and abs(p.f0_slope_hz_s) >= 5:
            parts.append(f"F0 {'rising' if p.f0_slope_hz_s > 0 else 'falling'} {abs(p.f0_slope_hz_s):.0f} Hz/s")
        if p.intensity_mean_db is not None:
            parts.append(f"intensity {p.intensity_mean_db:.0f} dB (sd {p.intensity_sd_db or 0:.1f})")
        if p.hnr_db is not None:
            parts.append(f"HNR {p.hnr_db:.1f} dB")
        if p.jitter_local is not None and p.shimmer_local is not None:
            parts.append(f"jitter {100 * p.jitter_local:.1f}%, shimmer {100 * p.shimmer_local:.1f}%")
        if p.speech_rate_wps is not None:
            parts.append(f"{p.speech_rate_wps:.1f} words/s")
        if p.pause_count:
            parts.append(f"{p.pause_count} pauses ({p.pause_total_s or 0:.1f} s)")
        words = f.transcript.words if f.transcript is not None and f.transcript.reliable else []
        per_word = word_f0(words, p.frames)
        if per_word:
            median = float(np.median([fr.f0_hz for fr in p.frames if fr.f0_hz]))  # the segment's pitch level
            w, hz = max(per_word, key=lambda x: abs(x[1] - median))
            if abs(hz - median) >= WORD_F0_DELTA_HZ:
                verb = "rises" if hz > median else "drops"
                parts.append(f"F0 {verb} {abs(hz - median):.0f} Hz on '{w.text}' ({w.start_s:.2f} s)")
        overlap = sum(s.end_s - s.start_s for s in f.overlaps)
        if overlap > 0:
            parts.append(f"overlapped speech {overlap:.1f} s")
        return "; ".join(parts)

    @staticmethod
    def _text(f: Features) -> str | None:
        t = f.transcript
        if t is None:
            return None
        if not t.reliable:
            return f"ASR output unreliable ({', '.join(t.unreliable_reasons)}); do not use as evidence"
        if not t.text.strip():
            return "no words recognised"
        speakers = sorted({w.speaker for w in t.words if w.speaker})
        who = f"; speakers {', '.join(speakers)}" if speakers else ""
        lang = f"{t.language}" + (f", p={t.language_probability:.2f}" if t.language_probability is not None else "")
        return f'"{t.text}" ({lang}; {len(t.words)} words, timing {t.word_timing}{who})'


# Listed last: it reads what every other tool filled.
TOOL = ToolSpec(
    name="timeline", phase="preprocess", section=None, fills=("evidence",), build=lambda settings: EvidenceSummarizer()
)
