"""The cost ledger of a table of rows, counted in Arrow: ``RunLedger.add_columns`` for every
row of the table at once, with the same result (``emoforge inspect`` on a million rows).

Sums of integers are order-free; USD sums are rounded to 8 decimals after each addition, as
``add_columns`` rounds them, so the amounts are added in the rows' order in Python. Agents
enter ``by_agent`` in the order ``add_columns`` meets them: per row, its annotations, the
agents the jury skipped, then its judges.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from emoforge.storage.ledger import AgentSpend, RunLedger
from emoforge.storage.schema import ROW_SCHEMA

_STRING = pa.string()
_USAGE = ROW_SCHEMA.field("verdicts").type.value_type.field("usage").type
_TOKENS = ROW_SCHEMA.field("jury").type.field("tokens").type
_INTS = ("asked", "skipped", "calls", "cached", "input_tokens", "output_tokens")
_JURY, _ANNOTATION, _SKIPPED, _VERDICT = 0, 1, 2, 3  # their order within a row


def add_table(ledger: RunLedger, table: pa.Table) -> None:
    """Add every row of ``table`` (columns ``jury``, ``annotations``, ``consensus``,
    ``verdicts``; nested fields as ``SUMMARY_COLUMNS`` reads them) to ``ledger``."""
    jury = table.column("jury").combine_chunks()
    table = table.filter(jury.is_valid())  # rows without a jury decision add nothing
    if table.num_rows == 0:
        return
    jury = table.column("jury").combine_chunks()
    consensus = table.column("consensus").combine_chunks()
    ledger.segments += table.num_rows
    labelled = pc.and_(
        pc.fill_null(pc.not_equal(get(consensus, "primary_label"), ""), False),
        pc.invert(pc.fill_null(get(consensus, "needs_review", pa.bool_()), False)),
    )
    ledger.labelled += int(pc.sum(labelled).as_py() or 0)
    ledger.calls += _sum(get(jury, "calls", pa.int64()))
    ledger.calls_saved += _sum(get(jury, "calls_saved", pa.int64()))
    ledger.saved_usd = _rounded_sum(ledger.saved_usd, get(jury, "saved_usd", pa.float64()))
    _count_into(ledger.stops, get(jury, "stop"))
    _count_into(ledger.policies, get(jury, "policy"))
    tokens = pc.list_flatten(get(jury, "tokens", _TOKENS))
    parts = pa.table({"key": get(tokens, "key"), "value": get(tokens, "value", pa.int64())})
    for part in parts.group_by("key", use_threads=False).aggregate([("value", "sum")]).to_pylist():
        ledger.by_part[part["key"]] = ledger.by_part.get(part["key"], 0) + int(part["value_sum"])
    events = _events(table, jury)
    order = pc.sort_indices(events, [("row", "ascending"), ("order", "ascending"), ("k", "ascending")])
    events = events.take(order)
    spent = events.filter(pc.not_equal(events.column("order"), _JURY))
    sums = spent.group_by("name", use_threads=False).aggregate([(c, "sum") for c in _INTS])
    for row in sums.to_pylist():
        spend = ledger.by_agent.setdefault(row["name"], AgentSpend())
        for c in _INTS:
            setattr(spend, c, getattr(spend, c) + int(row[f"{c}_sum"]))
    paid = spent.filter(pc.not_equal(spent.column("cost"), 0.0))
    costs = {name: spend.cost_usd for name, spend in ledger.by_agent.items()}
    for name, usd in zip(paid.column("name").to_pylist(), paid.column("cost").to_pylist(), strict=True):
        costs[name] = round(costs[name] + usd, 8)
    for name, usd in costs.items():
        ledger.by_agent[name].cost_usd = usd
    verdicts = events.filter(pc.equal(events.column("order"), _VERDICT))
    ledger.calls += _sum(verdicts.column("calls"))
    jury_and_judges = events.filter(pc.is_in(events.column("order"), value_set=pa.array([_JURY, _VERDICT], pa.int8())))
    ledger.cost_usd = _rounded_sum(ledger.cost_usd, jury_and_judges.column("cost"))


def _events(table: pa.Table, jury: pa.StructArray) -> pa.Table:
    """One line per thing ``add_columns`` adds: the row's jury cost, each annotation, each
    skipped agent, each verdict with a usage; ``row``, ``order``, ``k`` give its place."""
    annotations = table.column("annotations").combine_chunks()
    verdicts = table.column("verdicts").combine_chunks()
    skipped = get(jury, "skipped", pa.list_(pa.string()))
    ann = pc.list_flatten(annotations)
    ver = pc.list_flatten(verdicts)
    ver_usage = get(ver, "usage", _USAGE)
    with_usage = ver_usage.is_valid()
    ver_rows = pc.list_parent_indices(verdicts).filter(with_usage)
    judges = pc.binary_join_element_wise("judge:", get(ver, "judge"), "").filter(with_usage)
    parts = [
        _part(_JURY, pa.array(np.arange(table.num_rows)), None, None, get(jury, "cost_usd", pa.float64())),
        _part(_ANNOTATION, pc.list_parent_indices(annotations), get(ann, "agent"),
              get(ann, "usage", _USAGE), None),
        _part(_SKIPPED, pc.list_parent_indices(skipped), pc.list_flatten(skipped), None, None),
        _part(_VERDICT, ver_rows, judges, ver_usage.filter(with_usage), None),
    ]  # fmt: skip
    return pa.concat_tables(parts)


def _part(order: int, rows: Any, names: Any, usage: Any, cost: Any) -> pa.Table:
    n = len(rows)
    zeros = pa.array(np.zeros(n, dtype=np.int64))

    def used(field: str) -> Any:
        return zeros if usage is None else pc.fill_null(pc.cast(get(usage, field, pa.int64()), pa.int64()), 0)

    if usage is not None:
        cost = get(usage, "cost_usd", pa.float64())
    return pa.table(
        {
            "row": pc.cast(rows, pa.int64()),
            "order": pa.array(np.full(n, order, dtype=np.int8)),
            "k": pa.array(np.arange(n, dtype=np.int64)),
            "name": pa.nulls(n, pa.string()) if names is None else pc.cast(names, pa.string()),
            "asked": zeros if order in (_JURY, _SKIPPED) else pa.array(np.ones(n, dtype=np.int64)),
            "skipped": pa.array(np.ones(n, dtype=np.int64)) if order == _SKIPPED else zeros,
            "calls": used("calls"),
            "cached": used("cached"),
            "input_tokens": used("input_tokens"),
            "output_tokens": used("output_tokens"),
            "cost": pa.array(np.zeros(n)) if cost is None else pc.fill_null(pc.cast(cost, pa.float64()), 0.0),
        }
    )


def get(values: Any, path: str, type_: pa.DataType = _STRING) -> Any:
    """The field at dotted ``path`` of a struct array, or nulls of ``type_`` where the array's
    shard predates it (each table of ``iter_tables`` has its own shard's schema)."""
    for name in path.split("."):
        if values.type.get_field_index(name) < 0:
            return pa.nulls(len(values), type_)
        values = pc.struct_field(values, name)
    return values


def _sum(values: Any) -> int:
    return int(pc.sum(pc.fill_null(values, 0)).as_py() or 0)


def _rounded_sum(start: float, values: Any) -> float:
    """``start`` plus each non-zero amount, rounded to 8 decimals after each addition."""
    total = start
    for usd in pc.filter(values, pc.fill_null(pc.not_equal(values, 0.0), False)).to_pylist():
        total = round(total + float(usd), 8)
    return total


def _count_into(counts: dict[Any, int], values: Any) -> None:
    """Add each value's count to ``counts``, new values in the order they first occur."""
    tallied = pc.value_counts(values)
    for value, n in zip(tallied.field("values").to_pylist(), tallied.field("counts").to_pylist(), strict=True):
        counts[value] = counts.get(value, 0) + n
