"""`emoforge export` and `emoforge report` read the corpus streamed (``read_rows`` over
``iter_tables``); what they write equals what the rows of one whole-table read give, on a
corpus of many shards with superseded rows, and with a shard that fails its CRC only in
the columns the second pass reads."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from emoforge.configs.release import ReleaseConfig
from emoforge.release.export import export_corpus
from emoforge.release.pseudonyms import corpus_salt
from emoforge.release.report import CorpusReporter
from emoforge.release.writer import ReleaseWriter
from emoforge.storage.schema import table_to_rows
from emoforge.storage.shards import read_manifest, read_table
from tests.storage.test_streamed_reads import _corpus, _damage


@pytest.mark.parametrize("damaged", [False, True])
def test_a_streamed_export_writes_what_the_whole_table_gives(tmp_path: Path, damaged: bool) -> None:
    root = _corpus(tmp_path / "corpus")
    if damaged:
        _damage(root)
    config = ReleaseConfig(only_ok=False, hidden_ids="keep")
    warnings: list[str] = []
    streamed = export_corpus(root, tmp_path / "streamed", config, warn=warnings.append, allow_unknown=True)
    rows = table_to_rows(read_table(root))
    whole = ReleaseWriter(config).write(
        rows, tmp_path / "whole", read_manifest(root), allow_unknown=True, salt=corpus_salt(root)
    )
    assert sum(sum(c.values()) for c in streamed.counts.values()) + sum(streamed.excluded.values()) == 36
    assert streamed.counts == whole.counts and streamed.excluded == whole.excluded
    assert streamed.files == whole.files  # every published file, byte for byte (sha256)
    for split in streamed.counts:
        path = Path("data") / f"{split}.parquet"
        if (tmp_path / "whole" / path).exists():
            assert pq.read_table(tmp_path / "streamed" / path).equals(pq.read_table(tmp_path / "whole" / path))
    assert bool(warnings) == damaged  # the damaged shard is named before anything is written


def test_a_streamed_report_renders_what_the_whole_table_gives(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "corpus")
    reporter = CorpusReporter(ReleaseConfig())
    assert reporter.render(root) == reporter.render(root, table_to_rows(read_table(root)))
