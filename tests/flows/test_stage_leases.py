"""Stage instances are leased per task: built once per concurrent use, reused across threads and runs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from emoforge.flows.tasks import released, stage, stage_builds


class Costly:
    """Stands in for a stage whose constructor loads models."""

    def __init__(self, config: str) -> None:
        self.config = config


def test_a_later_task_on_another_thread_reuses_the_instance() -> None:
    @released
    def task(config: str) -> Costly:
        assert stage(Costly, config) is stage(Costly, config)  # one lease per task
        return stage(Costly, config)

    before = stage_builds().get("Costly", 0)
    first = ThreadPoolExecutor(1).submit(task, "reuse").result()
    # A fresh pool (a new run's threads) while nothing else is using it: same instance, no rebuild.
    second = ThreadPoolExecutor(1).submit(task, "reuse").result()
    assert second is first
    assert stage_builds()["Costly"] == before + 1
    assert task("other-config") is not first  # another config is another stage


def test_concurrent_tasks_never_share_an_instance() -> None:
    barrier = threading.Barrier(2)

    @released
    def task() -> Costly:
        inst = stage(Costly, "concurrent")
        barrier.wait(timeout=10)  # both tasks hold their lease at the same time
        return inst

    with ThreadPoolExecutor(2) as pool:
        a, b = (f.result() for f in [pool.submit(task), pool.submit(task)])
    assert a is not b
    with ThreadPoolExecutor(2) as pool:  # both go back to the pool and are reused, none rebuilt
        built = stage_builds()["Costly"]
        assert {id(f.result()) for f in [pool.submit(task), pool.submit(task)]} == {id(a), id(b)}
        assert stage_builds()["Costly"] == built


def test_a_failing_task_still_returns_its_lease() -> None:
    @released
    def failing() -> None:
        stage(Costly, "fails")
        raise RuntimeError("stage crashed")

    @released
    def task() -> Costly:
        return stage(Costly, "fails")

    with pytest.raises(RuntimeError):
        failing()
    built = stage_builds()["Costly"]
    task()
    assert stage_builds()["Costly"] == built


def test_stage_tasks_pickle_for_dask_workers() -> None:
    """Dask ships each task by value: the lease wrapper must not capture a lock or thread-local."""
    import cloudpickle

    from emoforge.flows import tasks

    for name in ("probe", "sample", "preprocess", "annotate", "judge", "aggregate"):
        restored = cloudpickle.loads(cloudpickle.dumps(getattr(tasks, name)))
        assert restored.name == getattr(tasks, name).name
