"""The report's cost-ledger section: the corpus's calls made and saved, per agent, per part, per run."""

from __future__ import annotations

from emoforge.release.report_ledger import ledger_section
from tests.storage.test_jury_ledger import ROWS


def test_ledger_section_shows_the_calls_saved_and_the_cost_per_labelled_segment() -> None:
    own = {"segments": 3, "calls": 2, "calls_saved": 4, "cost_usd": 0.004}
    run = {"run_id": "run-1", "counts": {"ledger": {**own, "per_labelled_segment": {"cost_usd": 0.002, "calls": 1.0}}}}
    page = ledger_section(ROWS, {"runs": [run]})
    # 2 paid calls made, 4 skipped: 4 of the full jury's 6 calls saved; 2 labelled segments.
    assert "paid calls made: 2; calls saved by the adaptive jury: 4 (67% of the full jury's)" in page
    assert "per labelled segment: 0.002 USD and 1.0 calls" in page
    assert (
        "<tr><td>mini</td><td>2</td><td>1</td><td>2</td><td>0</td><td>2000</td><td>400</td><td>0.0040</td></tr>" in page
    )
    assert "<tr><td>big</td><td>0</td><td>3</td>" in page
    assert "<tr><td>text</td><td>1800</td></tr>" in page
    assert "<tr><td>run-1</td><td>3</td><td>2</td><td>4</td><td>0.0040</td><td>0.002</td></tr>" in page


def test_rows_without_jury_decisions_say_so() -> None:
    old = [r.model_copy(update={"jury": None}) for r in ROWS]
    assert "written before the cost ledger existed" in ledger_section(old, {"runs": []})
