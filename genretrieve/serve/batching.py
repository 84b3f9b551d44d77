"""Micro-batching: requests that arrive together share one call into the models.

Every model call runs on one worker thread, so one copy of the models serves any number of
clients and nothing (torch, the SQLite connection, FAISS) is touched from two threads. Requests
queue as (key, items); the worker takes what is queued, waits up to `window` seconds for more
(up to `max_items`), and makes one call per key with all their items concatenated. Under load
the queue fills while the models are busy, so batches grow with concurrency on their own; the
window only gathers requests that arrive together at an idle server. If a batched call fails,
each request of it is retried alone, so one bad request fails only itself.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Hashable


@dataclass
class _Pending:
    key: Hashable
    items: list
    future: asyncio.Future


class MicroBatcher:
    """`await submit(key, items)` -> `call(key, items)`'s outputs for these items, batched with others.

    `call(key, items)` must return one output per item, in order (a list or an array).
    """

    def __init__(self, call: Callable[[Hashable, list], Any], window: float = 0.002, max_items: int = 64):
        self.call = call
        self.window = window
        self.max_items = max_items
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genretrieve-models")
        self.queue: asyncio.Queue[_Pending] | None = None
        self.worker: asyncio.Task | None = None
        self.stats = {"calls": 0, "requests": 0, "items": 0, "largest_batch": 0}

    async def run_in_worker(self, fn: Callable, *args):
        """Run fn on the models' thread (for set-up and anything else that touches the models)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self.worker = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            try:
                await self.worker
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=True)

    async def submit(self, key: Hashable, items: list) -> list:
        if self.queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(key, list(items), future))
        return await future

    async def _gather(self) -> list[_Pending]:
        batch = [await self.queue.get()]
        count = len(batch[0].items)
        deadline = time.perf_counter() + self.window
        while count < self.max_items:
            if self.queue.empty():
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(self.queue.get(), left)
                except asyncio.TimeoutError:
                    break
            else:
                pending = self.queue.get_nowait()
            batch.append(pending)
            count += len(pending.items)
        return batch

    async def _loop(self) -> None:
        while True:
            batch = await self._gather()
            groups: dict[Hashable, list[_Pending]] = {}
            for pending in batch:
                groups.setdefault(pending.key, []).append(pending)
            for key, members in groups.items():
                await self._run_group(key, [m for m in members if not m.future.cancelled()])

    async def _run_group(self, key: Hashable, members: list[_Pending]) -> None:
        if not members:
            return
        items = [item for m in members for item in m.items]
        try:
            outputs = await self.run_in_worker(self.call, key, items)
        except Exception as exc:  # noqa: BLE001  (handed to the requests that caused it)
            if len(members) == 1:
                _settle(members[0].future, exc=exc)
            else:  # find the culprit(s): each request alone
                for member in members:
                    await self._run_group(key, [member])
            return
        self.stats["calls"] += 1
        self.stats["requests"] += len(members)
        self.stats["items"] += len(items)
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(items))
        start = 0
        for member in members:
            _settle(member.future, result=outputs[start:start + len(member.items)])
            start += len(member.items)


def _settle(future: asyncio.Future, result=None, exc: BaseException | None = None) -> None:
    if future.done():  # the client went away
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
