"""CONTRIBUTING.md's "Add an aggregator", done for a toy one: its class, registered the one
way the real ones are (its entry in ``AGGREGATORS``), is accepted by the config and runs both
per segment in the pipeline's aggregate phase and per corpus in ``emoforge aggregate``.

Outside tests a contributor touches 2 files: the aggregator's own module in
``emoforge/quality/aggregation/`` and its entry in ``AGGREGATORS``
(``emoforge/quality/aggregation/__init__.py``). Nothing else names aggregators.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from emoforge.cli import app
from emoforge.flows.annotate import annotate_corpus
from emoforge.quality.aggregation import AGGREGATORS, Aggregator, AggregatorSpec, Scope
from emoforge.quality.aggregation.base import check_frame, encode, most_probable, proba_frame
from emoforge.quality.aggregation.majority import worker_accuracy
from emoforge.storage.records import Status
from emoforge.storage.shards import read_manifest, read_rows
from tests.conftest import espeak

if TYPE_CHECKING:
    import pandas as pd

pytestmark = pytest.mark.slow


class FirstVote(Aggregator):
    """Each task takes, with certainty, the label of the worker whose name sorts first.

    Fitted attributes: ``probas_``, ``labels_``, ``agreement_`` (worker -> share of its
    answers equal to the first worker's).
    """

    spec = AggregatorSpec("first_vote", frozenset({Scope.SEGMENT, Scope.CORPUS}), reliability="agreement_")
    agreement_: pd.Series

    def fit(self, df: pd.DataFrame) -> FirstVote:
        data = check_frame(df)
        enc = encode(data)
        first = data.sort_values(["task", "worker"]).drop_duplicates("task").set_index("task")["label"]
        probas = np.zeros((len(enc.tasks), len(enc.labels)))
        column = {label: j for j, label in enumerate(enc.labels)}
        for i, task in enumerate(enc.tasks):
            probas[i, column[first[task]]] = 1.0
        self.probas_ = proba_frame(enc, probas)
        self.labels_ = most_probable(self.probas_)
        self.agreement_ = worker_accuracy(data, self.labels_)
        return self


@pytest.fixture()
def first_vote(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(AGGREGATORS, FirstVote.spec.name, FirstVote)


def test_a_toy_aggregator_runs_per_segment_in_the_pipeline_and_per_corpus(first_vote: None, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    wav = espeak("I can not believe it. This is wonderful news, truly wonderful!", tmp_path / "in" / "talk.wav")
    out = tmp_path / "corpus"
    jury = [{"name": "a_text", "backend": "text_cues"}, {"name": "b_voice", "backend": "voice_cues"}]
    aggregation = {"method": "first_vote", "corpus_methods": ["majority", "first_vote"]}
    overrides = {
        "agents": {"jury": jury, "taxonomy": {"embedding_model": None}},
        "preprocess": {"face": {"enabled": False}},
        "aggregation": aggregation,
    }
    annotate_corpus(inputs=[str(wav)], out=str(out), overrides=overrides)

    rows = [r for r in read_rows(str(out)) if r.status == Status.ok]
    first: dict[str, str] = {}
    for row in rows:
        valid = sorted((a.agent, a.primary_label) for a in row.annotations if a.status == Status.ok and a.primary_label)
        assert row.consensus is not None and row.segment is not None
        if valid:
            first[row.segment.id] = valid[0][1]
            # The phase-5 consensus is the toy's: the first agent's label, with certainty.
            assert row.consensus.method == "first_vote"
            assert (row.consensus.primary_label, row.consensus.distribution) == (valid[0][1], {valid[0][1]: 1.0})
    assert first, "no segment got a valid annotation"

    config = tmp_path / "aggregate.yaml"
    config.write_text(yaml.safe_dump({"aggregation": aggregation}), encoding="utf-8")
    result = CliRunner().invoke(app, ["aggregate", str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "first_vote" in result.output
    import pyarrow.parquet as pq

    table = pq.read_table(out / "aggregation.parquet").to_pylist()
    assert {r["segment_id"]: r["label"] for r in table if r["method"] == "first_vote"} == first
    # Its declared reliability attribute is what the manifest reports per annotator.
    stats = read_manifest(str(out))["stats"]["aggregation"]["first_vote"]
    assert stats["annotators"]["a_text"] == 1.0 and stats["n_tasks"] == len(first)


def test_the_config_names_only_registered_aggregators_where_they_run(first_vote: None, tmp_path: Path) -> None:
    """A name the registry lacks, or one that does not run per segment, is refused at once
    with the YAML key and the choices, which the toy is now one of."""
    from emoforge.configs import ConfigError

    for method in ("nonesuch", "mace"):
        with pytest.raises(ConfigError, match=r"aggregation\.method: .*'first_vote'.*got '" + method):
            annotate_corpus(inputs=[], out=str(tmp_path / method), overrides={"aggregation": {"method": method}})
    assert not (tmp_path / "nonesuch").exists()
