"""The real CREMA-D crowd votes: recognition rates, majority accuracy and alpha per mode.

The CREMA-D paper reports per-response recognition of 40.9 / 58.2 / 63.6 % (voice / face /
audio-visual) from the raw logs; the tabulated votes give 40.0 / 57.4 / 63.1 %.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emoforge.quality.agreement import (
    fleiss_kappa,
    krippendorff_alpha_counts,
    majority_accuracy,
    response_accuracy,
)

VOTES = ["A", "D", "F", "H", "N", "S"]
INTENDED = {"ANG": "A", "DIS": "D", "FEA": "F", "HAP": "H", "NEU": "N", "SAD": "S"}
MODES = {"1": "voice", "2": "face", "3": "av"}


@pytest.fixture(scope="module")
def crema(fixtures_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import pandas as pd

    table = pd.read_csv(fixtures_dir / "labels" / "crema_d_tabulated_votes.csv", dtype={0: str})
    table = table.rename(columns={table.columns[0]: "row_id"})
    truth = table["fileName"].str.split("_").str[2].map(INTENDED).map(VOTES.index)
    out = {}
    for prefix, mode in MODES.items():
        rows = table["row_id"].str.startswith(prefix)
        out[mode] = (table.loc[rows, VOTES].to_numpy(dtype=float), truth[rows].to_numpy(dtype=int))
    return out


def test_vote_table_shape(crema: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    assert {mode: len(c) for mode, (c, _) in crema.items()} == {"voice": 7442, "face": 7442, "av": 7442}


@pytest.mark.parametrize(("mode", "expected"), [("voice", 40.0), ("face", 57.4), ("av", 63.1)])
def test_per_response_recognition(crema: dict[str, tuple[np.ndarray, np.ndarray]], mode: str, expected: float) -> None:
    counts, truth = crema[mode]
    assert 100 * response_accuracy(counts, truth) == pytest.approx(expected, abs=1.0)


def test_majority_vote_accuracy_per_mode(crema: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    acc = {mode: majority_accuracy(c, t) for mode, (c, t) in crema.items()}
    # Values recomputed from the counts (ties broken at random, in expectation).
    assert acc["voice"] == pytest.approx(0.446, abs=0.005)
    assert acc["face"] == pytest.approx(0.685, abs=0.005)
    assert acc["av"] == pytest.approx(0.744, abs=0.005)
    # The crowd beats the individual rater in every mode.
    for mode, (c, t) in crema.items():
        assert acc[mode] > response_accuracy(c, t)


def test_alpha_per_mode(crema: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    import krippendorff

    alpha = {mode: krippendorff_alpha_counts(c) for mode, (c, _) in crema.items()}
    for mode, (counts, _) in crema.items():
        reference = krippendorff.alpha(value_counts=counts, level_of_measurement="nominal")
        assert alpha[mode] == pytest.approx(reference, abs=1e-9)
    assert alpha["voice"] == pytest.approx(0.281, abs=0.002)
    assert alpha["face"] == pytest.approx(0.458, abs=0.002)
    assert alpha["av"] == pytest.approx(0.497, abs=0.002)
    assert alpha["av"] > alpha["face"] > alpha["voice"]
    # Fleiss' kappa (variable raters per clip) tells the same story, a little lower.
    kappa = {mode: fleiss_kappa(c) for mode, (c, _) in crema.items()}
    assert kappa["av"] > kappa["face"] > kappa["voice"]
    assert all(abs(kappa[m] - alpha[m]) < 0.01 for m in MODES.values())
