from __future__ import annotations

import asyncio

import pytest

from core.db.bulk import GroupCommit, GroupCommitClosed


class Recorder:
    """A write that records its batches and waits for ``release`` (so callers can pile up)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail: Exception | None = None

    async def write(self, batch: list[int]) -> list[int]:
        self.batches.append(batch)
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return [item * 10 for item in batch]


async def test_a_lone_item_is_written_at_once() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.write)
    assert await commit.submit(1) == 10
    assert recorder.batches == [[1]]


async def test_items_arriving_during_a_write_go_together_and_get_their_own_result() -> None:
    recorder = Recorder()
    recorder.release.clear()
    commit = GroupCommit(recorder.write, limit=3)
    first = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(commit.submit(n)) for n in (2, 3, 4, 5)]
    await asyncio.sleep(0)
    recorder.release.set()
    results = await asyncio.gather(first, *rest)
    assert results == [10, 20, 30, 40, 50]
    assert recorder.batches == [[1], [2, 3, 4], [5]]


async def test_a_failed_write_reaches_every_waiter_of_its_batch_only() -> None:
    recorder = Recorder()
    recorder.release.clear()
    commit = GroupCommit(recorder.write)
    first = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(commit.submit(n)) for n in (2, 3)]
    await asyncio.sleep(0)
    recorder.fail = ValueError("disk full")
    recorder.release.set()
    for task in (first, *waiting):
        with pytest.raises(ValueError, match="disk full"):
            await task
    recorder.fail = None
    assert await commit.submit(4) == 40


async def test_close_drains_the_waiting_items_and_refuses_new_ones() -> None:
    recorder = Recorder()
    recorder.release.clear()
    commit = GroupCommit(recorder.write)
    tasks = [asyncio.create_task(commit.submit(n)) for n in (1, 2, 3)]
    await asyncio.sleep(0)
    closing = asyncio.create_task(commit.close())
    await asyncio.sleep(0)
    assert not closing.done()
    recorder.release.set()
    await closing
    assert [task.result() for task in tasks] == [10, 20, 30]
    with pytest.raises(GroupCommitClosed):
        await commit.submit(4)


async def test_a_cancelled_caller_does_not_stop_the_write() -> None:
    recorder = Recorder()
    recorder.release.clear()
    commit = GroupCommit(recorder.write)
    caller = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)
    caller.cancel()
    recorder.release.set()
    await commit.close()
    assert recorder.batches == [[1]]


class Gates:
    """A write that waits until its batch's gate opens; counts the batches written at once."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gates: list[asyncio.Event] = []
        self.writing = 0
        self.most_at_once = 0

    async def write(self, batch: list[int]) -> list[int]:
        self.batches.append(batch)
        gate = asyncio.Event()
        self.gates.append(gate)
        self.writing += 1
        self.most_at_once = max(self.most_at_once, self.writing)
        await gate.wait()
        self.writing -= 1
        return [item * 10 for item in batch]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_with_two_flushers_items_arriving_during_a_write_are_written_beside_it() -> None:
    gates = Gates()
    commit = GroupCommit(gates.write, flushers=2)
    first = asyncio.create_task(commit.submit(1))
    await _settle()
    beside = [asyncio.create_task(commit.submit(n)) for n in (2, 3)]
    await _settle()
    later = asyncio.create_task(commit.submit(4))  # both are writing: it waits for one
    await _settle()
    assert gates.batches == [[1], [2, 3]] and gates.most_at_once == 2

    gates.gates[1].set()
    assert [await task for task in beside] == [20, 30]
    await _settle()
    assert gates.batches == [[1], [2, 3], [4]]
    gates.gates[2].set()
    gates.gates[0].set()
    assert (await first, await later) == (10, 40)
    assert gates.most_at_once == 2
    await commit.close()


async def test_with_one_flusher_batches_are_written_one_after_another() -> None:
    gates = Gates()
    commit = GroupCommit(gates.write)
    first = asyncio.create_task(commit.submit(1))
    await _settle()
    rest = [asyncio.create_task(commit.submit(n)) for n in (2, 3)]
    await _settle()
    assert gates.batches == [[1]]
    gates.gates[0].set()
    await _settle()
    assert gates.batches == [[1], [2, 3]]
    gates.gates[1].set()
    assert [await first, *[await task for task in rest]] == [10, 20, 30]
    assert gates.most_at_once == 1
