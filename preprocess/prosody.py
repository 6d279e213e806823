"""Segment prosody with praat-parselmouth: F0, intensity, voice quality, rate and pauses.

- F0: Praat autocorrelation pitch (10 ms step, floor/ceiling from config); mean and sd over
  voiced frames, 5th/95th percentiles as min/max (robust to octave jumps), slope = least
  squares line over voiced frames (Hz/s).
- Intensity: Praat intensity (dB SPL re 2e-5, as Praat reports for a +-1 signal).
- Jitter (local) and shimmer (local) from a periodic point process, Praat's standard
  arguments (0.0001, 0.02, 1.3, 1.6); HNR: cross-correlation harmonicity mean (dB).
- Pauses: intensity frames more than ``silence_db_below_peak`` below the segment's 99th
  percentile, in runs of at least ``min_pause_s``, not counting leading/trailing silence.
- Speech rate: words (from ASR) per second of non-pause time.

Frames (``ProsodyFrame``) are subsampled to ``frame_step_s`` in recording time, so later
stages can compute per-word prosody without recomputing.
"""

from __future__ import annotations

import logging

import numpy as np

from emoforge.configs.preprocess import ProsodyConfig
from emoforge.preprocess.tool import ToolSpec
from emoforge.storage.records import Prosody, ProsodyFrame, Word

log = logging.getLogger(__name__)

_PITCH_STEP_S = 0.01


def _r(x: float | None, nd: int = 3) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


class ProsodyAnalyzer:
    """Praat measures for one segment of mono audio."""

    model_id = "praat-parselmouth"

    def __init__(self, config: ProsodyConfig) -> None:
        self.config = config

    def analyze(self, audio: np.ndarray, sr: int, offset_s: float, words: list[Word] | None = None) -> Prosody:
        """Prosody of ``audio`` that starts at ``offset_s`` recording seconds.

        Raises:
            ValueError: the audio is shorter than three pitch periods at the floor.
        """
        import parselmouth
        from parselmouth.praat import call

        cfg = self.config
        if len(audio) < int(3 * sr / cfg.f0_min_hz) + 1:
            raise ValueError(f"{len(audio) / sr:.3f} s of audio is too short for prosody")
        snd = parselmouth.Sound(np.asarray(audio, dtype=np.float64), sampling_frequency=sr, start_time=offset_s)
        pitch = snd.to_pitch_ac(time_step=_PITCH_STEP_S, pitch_floor=cfg.f0_min_hz, pitch_ceiling=cfg.f0_max_hz)
        f0 = pitch.selected_array["frequency"].astype(np.float64)
        pt = pitch.xs()
        voiced = f0 > 0
        inten = snd.to_intensity(minimum_pitch=cfg.f0_min_hz, time_step=_PITCH_STEP_S)
        idb = inten.values[0].astype(np.float64)
        it = inten.xs()

        out = Prosody(voiced_fraction=_r(voiced.mean() if f0.size else 0.0))
        if voiced.sum() >= 2:
            v, t = f0[voiced], pt[voiced]
            slope = float(np.polyfit(t - t.mean(), v, 1)[0]) if np.ptp(t) > 0 else 0.0
            out = out.model_copy(
                update=dict(
                    f0_mean_hz=_r(v.mean(), 2),
                    f0_sd_hz=_r(v.std(), 2),
                    f0_min_hz=_r(np.percentile(v, 5), 2),
                    f0_max_hz=_r(np.percentile(v, 95), 2),
                    f0_slope_hz_s=_r(slope, 2),
                )
            )
            try:
                pp = call(snd, "To PointProcess (periodic, cc)", cfg.f0_min_hz, cfg.f0_max_hz)
                jitter = call(pp, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3)
                shimmer = call([snd, pp], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6)
                hnr = call(snd.to_harmonicity_cc(minimum_pitch=cfg.f0_min_hz), "Get mean", 0, 0)
                out = out.model_copy(
                    update=dict(jitter_local=_r(jitter, 5), shimmer_local=_r(shimmer, 5), hnr_db=_r(hnr, 2))
                )
            except parselmouth.PraatError as exc:  # too few periods for voice quality: leave them null
                log.debug("voice quality undefined: %s", exc)
        finite = idb[np.isfinite(idb)]
        if finite.size:
            # Level statistics over sounding frames only: digital silence reads as about
            # -300 dB in Praat and would swamp the mean and standard deviation.
            sounding = finite[finite >= np.percentile(finite, 99) - self.config.silence_db_below_peak]
            out = out.model_copy(
                update=dict(intensity_mean_db=_r(sounding.mean(), 2), intensity_sd_db=_r(sounding.std(), 2))
            )
            pauses = self._pauses(it, idb)
            speaking = max(1e-6, len(audio) / sr - sum(pauses))
            rate = len(words) / speaking if words else None
            out = out.model_copy(
                update=dict(
                    pause_count=len(pauses),
                    pause_total_s=_r(sum(pauses), 3),
                    speech_rate_wps=_r(rate, 3) if rate is not None else None,
                )
            )
        return out.model_copy(update={"frames": self._frames(pt, f0, it, idb)})

    def _pauses(self, t: np.ndarray, db: np.ndarray) -> list[float]:
        finite = np.where(np.isfinite(db), db, -np.inf)
        silent = finite < np.percentile(db[np.isfinite(db)], 99) - self.config.silence_db_below_peak
        if silent.all() or not silent.any():
            return []
        loud = np.nonzero(~silent)[0]
        first, last = loud[0], loud[-1]
        pauses: list[float] = []
        run = 0
        for s in silent[first : last + 1]:
            if s:
                run += 1
            else:
                if run * _PITCH_STEP_S >= self.config.min_pause_s:
                    pauses.append(run * _PITCH_STEP_S)
                run = 0
        return pauses

    def _frames(self, pt: np.ndarray, f0: np.ndarray, it: np.ndarray, db: np.ndarray) -> list[ProsodyFrame]:
        if pt.size == 0:
            return []
        step = max(1, round(self.config.frame_step_s / _PITCH_STEP_S))
        frames = []
        for i in range(0, len(pt), step):
            j = int(np.argmin(np.abs(it - pt[i]))) if it.size else -1
            level = float(db[j]) if j >= 0 and np.isfinite(db[j]) else None
            frames.append(
                ProsodyFrame(
                    t_s=round(float(pt[i]), 3),
                    f0_hz=_r(f0[i], 1) if f0[i] > 0 else None,
                    intensity_db=_r(level, 1),
                )
            )
        return frames


TOOL = ToolSpec(name="prosody", phase="preprocess", section="preprocess.prosody", fills=("prosody",))
