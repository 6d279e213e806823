"""Each aggregator declares itself once (``spec``); the registry, the config's choices and the
corpus statistics read that declaration."""

from __future__ import annotations

import pandas as pd
import pytest

from emoforge.configs import ConfigError, load_config
from emoforge.configs.quality import AggregationConfig
from emoforge.quality.aggregation import AGGREGATORS, DawidSkene, Scope, check_aggregators, choices


def test_every_aggregator_declares_its_own_spec_under_its_registry_name() -> None:
    for name, cls in AGGREGATORS.items():
        # Declared on the class itself: a subclass (WeightedVote of SoftVote) does not inherit a name.
        assert "spec" in vars(cls) and cls.spec.name == name
        assert cls.spec.scopes and hasattr(cls, "fit")


def test_the_configs_choices_are_the_registered_aggregators_of_each_scope() -> None:
    # The names the config's two Literals listed before the registry became their one source.
    assert choices(Scope.SEGMENT) == ["majority", "weighted", "soft", "pooled"]
    assert choices(Scope.CORPUS) == ["majority", "weighted", "dawid_skene", "mace"]
    for method in choices(Scope.SEGMENT):
        check_aggregators(load_config(None, {"aggregation": {"method": method}}).aggregation)
    check_aggregators(load_config(None).aggregation)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (AggregationConfig(method="dawid_skene"), r"aggregation\.method: Input should be 'majority', .* or 'pooled'"),
        (AggregationConfig(corpus_methods=["mace", "soft"]), r"aggregation\.corpus_methods: .*got 'soft'"),
        (AggregationConfig(corpus_methods=["nonesuch"]), r"'dawid_skene' or 'mace' .*got 'nonesuch'"),
    ],
)
def test_a_name_outside_its_scope_is_a_config_error_naming_key_and_choices(
    config: AggregationConfig, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_aggregators(config)


def test_dawid_skene_reliability_is_the_prior_weighted_diagonal_of_its_confusion_matrices() -> None:
    """``accuracies_`` (its spec's reliability) is what the corpus manifest reported before."""
    df = pd.DataFrame(
        [
            (t, w, lab)
            for t, labels in enumerate(["aab", "abb", "aaa", "bba", "aba"])
            for w, lab in zip("xyz", labels, strict=True)
        ],
        columns=["task", "worker", "label"],
    )
    model = DawidSkene().fit(df)
    errors, priors = model.errors_, model.priors_
    expected = {
        str(w): float(sum(priors[c] * errors.loc[(w, c), c] for c in priors.index))
        for w in errors.index.get_level_values("worker").unique()
    }
    assert {str(k): float(v) for k, v in getattr(model, DawidSkene.spec.reliability).items()} == expected
