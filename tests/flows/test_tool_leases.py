"""Tool instances are leased per task: built once per concurrent use, reused across threads and runs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from emoforge.configs.run import RunConfig
from emoforge.flows.leases import lease, released, tool_builds
from emoforge.flows.pipeline import configured


class Costly:
    """Stands in for a tool whose constructor loads models."""

    def __init__(self, config: str) -> None:
        self.config = config


def test_a_later_task_on_another_thread_reuses_the_instance() -> None:
    @released
    def task(config: str) -> Costly:
        assert lease(Costly, config) is lease(Costly, config)  # one lease per task
        return lease(Costly, config)

    before = tool_builds().get("Costly", 0)
    first = ThreadPoolExecutor(1).submit(task, "reuse").result()
    # A fresh pool (a new run's threads) while nothing else is using it: same instance, no rebuild.
    second = ThreadPoolExecutor(1).submit(task, "reuse").result()
    assert second is first
    assert tool_builds()["Costly"] == before + 1
    assert task("other-config") is not first  # another config is another instance


def test_concurrent_tasks_never_share_an_instance() -> None:
    barrier = threading.Barrier(2)

    @released
    def task() -> Costly:
        inst = lease(Costly, "concurrent")
        barrier.wait(timeout=10)  # both tasks hold their lease at the same time
        return inst

    with ThreadPoolExecutor(2) as pool:
        a, b = (f.result() for f in [pool.submit(task), pool.submit(task)])
    assert a is not b
    with ThreadPoolExecutor(2) as pool:  # both go back to the pool and are reused, none rebuilt
        built = tool_builds()["Costly"]
        assert {id(f.result()) for f in [pool.submit(task), pool.submit(task)]} == {id(a), id(b)}
        assert tool_builds()["Costly"] == built


def test_a_failing_task_still_returns_its_lease() -> None:
    @released
    def failing() -> None:
        lease(Costly, "fails")
        raise RuntimeError("stage crashed")

    @released
    def task() -> Costly:
        return lease(Costly, "fails")

    with pytest.raises(RuntimeError):
        failing()
    built = tool_builds()["Costly"]
    task()
    assert tool_builds()["Costly"] == built


def test_phase_tasks_pickle_for_dask_workers() -> None:
    """Dask ships each task by value: the lease wrapper must not capture a lock or thread-local."""
    import cloudpickle

    for _, task in configured(RunConfig()):
        restored = cloudpickle.loads(cloudpickle.dumps(task))
        assert restored.name == task.name
