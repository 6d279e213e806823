"""The domain model: distances, trust and the mix with the output prior, as invariants and a fit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoforge.agents.recognizers.domain import (
    DomainModel,
    fit_calibration,
    fit_subspace,
    fit_trust,
    mix,
    temperature_of,
    trust_of,
)

RNG = np.random.default_rng(0)


def toy(d: int = 12, n: int = 400) -> tuple[DomainModel, np.ndarray]:
    """Training inputs that live in a 3-dimensional subspace of ``d``, with a little noise."""
    basis = np.linalg.qr(RNG.normal(size=(d, 3)))[0].T
    z = RNG.normal(size=(n, 3)) * [3.0, 2.0, 1.0] @ basis + 0.05 * RNG.normal(size=(n, d))
    components, variances, residual = fit_subspace(z, 3)
    return DomainModel(components, variances, residual, np.array([3.0, -2.0, -1.0]), 1.0, 0.5, "toy"), z


def test_training_inputs_sit_at_distance_one_and_far_inputs_lose_trust() -> None:
    model, z = toy()
    d_pca, d_res = model.distances(z)
    assert np.mean(d_pca) == pytest.approx(1.0, rel=0.05) and np.mean(d_res) == pytest.approx(1.0, rel=0.05)
    far_inside = 6 * z[:5]  # same directions, six times as far
    outside = z[:5] + 2.0 * np.linalg.svd(np.eye(12) - model.components.T @ model.components)[0][:, 0]
    assert np.all(model.trust(far_inside) < model.trust(z[:5]))
    assert np.all(model.trust(outside) < model.trust(z[:5]))
    check = model.check(outside[:1])
    assert check.off_domain and check.residual > 100 and check.reference == "toy"
    assert not model.check(z[:1]).off_domain


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-20, 20), min_size=4, max_size=4),
    st.floats(0.0, 1.0),
    st.floats(-5, 5),
    st.floats(-5, 0),
    st.floats(-5, 0),
)
def test_mix_is_a_distribution_between_the_model_and_its_prior(
    logits: list[float], lam: float, a: float, b: float, c: float
) -> None:
    prior = np.array([0.4, 0.3, 0.2, 0.1])
    p = mix(np.array([logits]), prior, np.array([lam]))[0]
    assert p.sum() == pytest.approx(1.0) and np.all(p >= 0)
    # Never further from the prior than the model itself, never past it.
    soft = np.exp(np.array(logits) - max(logits))
    soft /= soft.sum()
    assert np.all(p <= np.maximum(soft, prior) + 1e-12) and np.all(p >= np.minimum(soft, prior) - 1e-12)
    # Trust never rises with distance when the fitted slopes are <= 0 (fit_trust bounds them),
    # and the temperature never falls when its slopes are >= 0 (fit_calibration bounds them).
    near, far = trust_of(np.array([a, b, c]), np.array([1.0, 4.0]), np.array([1.0, 4.0]))
    assert far <= near + 1e-12
    t_near, t_far = temperature_of(1.3, np.array([-b, -c]), np.array([1.0, 4.0]), np.array([1.0, 4.0]))
    assert t_near == pytest.approx(1.3) and t_far >= t_near


def test_fit_trust_learns_to_distrust_the_far_inputs_where_the_model_is_wrong() -> None:
    """Near inputs: the logits are right; far inputs: the labels are random. The fitted
    mapping keeps near confidence and brings far confidence down to about chance."""
    n, k = 3000, 4
    y = RNG.integers(0, k, n)
    far = np.arange(n) >= n // 2
    logits = np.zeros((n, k))
    logits[np.arange(n), y] = 3.0
    logits[far] = 0.0
    logits[far, RNG.integers(0, k, far.sum())] = 3.0  # confident and random
    d_pca = np.where(far, 30.0, 1.0) * RNG.uniform(0.8, 1.2, n)
    d_res = np.where(far, 30.0, 1.0) * RNG.uniform(0.8, 1.2, n)
    prior = np.full(k, 1 / k)
    temperature, coef = fit_trust(logits, y, prior, d_pca, d_res)
    p = mix(logits / temperature, prior, trust_of(coef, d_pca, d_res))
    conf = p.max(axis=1)
    assert conf[far].mean() < 0.35  # chance is 0.25
    assert conf[~far].mean() > 0.8 and np.mean(p[~far].argmax(axis=1) == y[~far]) == 1.0


def test_fit_calibration_softens_the_far_inputs_and_leaves_the_near_ones_calibrated() -> None:
    """Near inputs: logits as calibrated as they come (right 0.8 of the time at 0.8); far
    inputs: the same logits, right 0.4 of the time. One temperature must soften both or
    neither; a temperature that grows with the distance fits each, so its fit is better on
    both and keeps the near confidence where it was."""
    n, k = 4000, 4
    far = np.arange(n) >= n // 2
    said = RNG.integers(0, k, n)
    logits = np.zeros((n, k))
    logits[np.arange(n), said] = np.log(0.8 / 0.2 * (k - 1))  # softmax gives 0.8 to the label said
    right = RNG.uniform(size=n) < np.where(far, 0.4, 0.8)
    y = np.where(right, said, (said + RNG.integers(1, k, n)) % k)
    d_pca = RNG.uniform(0.8, 1.2, n)  # far only outside the main subspace
    d_res = np.where(far, 8.0, 1.0) * RNG.uniform(0.8, 1.2, n)
    prior = np.full(k, 1 / k)
    fitted = fit_calibration(logits, y, prior, d_pca, d_res)
    assert fitted.temperature_coef[1] > 0.2  # softer with the residual distance
    t = temperature_of(fitted.temperature, fitted.temperature_coef, d_pca, d_res)
    p = mix(logits / t[:, None], prior, trust_of(fitted.coef, d_pca, d_res))
    conf = p.max(axis=1)
    assert conf[~far].mean() == pytest.approx(0.8, abs=0.04) and conf[far].mean() == pytest.approx(0.4, abs=0.05)
    one_t, coef = fit_trust(logits, y, prior, d_pca, d_res)
    q = mix(logits / one_t, prior, trust_of(coef, d_pca, d_res))
    rows = np.arange(n)
    assert np.mean(np.log(p[rows, y])) > np.mean(np.log(q[rows, y]))


def test_weights_round_trip(tmp_path) -> None:
    model, _ = toy()
    model = DomainModel(**{**model.__dict__, "temperature_coef": np.array([0.1, 0.7])})
    np.savez(tmp_path / "w.npz", other=np.zeros(2), **model.arrays())
    with np.load(tmp_path / "w.npz") as z:
        back = DomainModel.from_arrays(z)
    assert back is not None and back.reference == "toy" and back.min_trust == 0.5
    assert np.allclose(back.trust(np.ones((1, 12))), model.trust(np.ones((1, 12))), atol=1e-6)
    assert np.allclose(back.temperatures(np.ones((1, 12))), model.temperatures(np.ones((1, 12))), atol=1e-6)
    # Weights written before the distance temperature: one temperature for every input.
    arrays = {k: v for k, v in model.arrays().items() if k != "domain_temperature_coef"}
    np.savez(tmp_path / "one_t.npz", **arrays)
    with np.load(tmp_path / "one_t.npz") as z:
        one_t = DomainModel.from_arrays(z)
    assert one_t is not None and np.all(one_t.temperatures(6 * np.ones((3, 12))) == model.temperature)
    np.savez(tmp_path / "old.npz", coef=np.zeros(2))
    with np.load(tmp_path / "old.npz") as z:
        assert DomainModel.from_arrays(z) is None
