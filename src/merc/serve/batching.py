"""Micro-batching: requests that arrive together share one forward pass.

:class:`MicroBatcher` keeps a queue of pending requests. One worker task takes the first, waits at
most ``max_wait_ms`` for more (up to ``max_utterances`` in all), runs the combined conversations
through :meth:`merc.inference.Predictor.predict` in a worker thread (the event loop stays free to
accept requests) and hands each request its own rows. Dialogue ids are namespaced per request, so
two requests that both call their dialogue ``"c1"`` stay apart. If a combined batch fails, its
requests are retried one by one so that one bad request cannot fail the others.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable

_SEP = "\x1f"  # never in a JSON-decoded id after validation (ids are checked for control characters)


@dataclass
class _Pending:
    records: list[dict[str, Any]]
    future: asyncio.Future = field(repr=False)


@dataclass
class BatchStats:
    """Counters for ``/health``: requests served, forward batches run, the largest batch."""

    requests: int = 0
    batches: int = 0
    largest_batch: int = 0


class MicroBatcher:
    """Combine concurrent prediction requests.

    Args:
        predict: utterance records → prediction rows (grouped by dialogue, in order of first
            appearance); called in a worker thread, one batch at a time.
        max_utterances: stop adding requests to a batch beyond this many utterances.
        max_wait_ms: how long the first request of a batch waits for company.
    """

    def __init__(self, predict: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
                 max_utterances: int = 1024, max_wait_ms: float = 5.0) -> None:
        self.predict = predict
        self.max_utterances, self.max_wait = int(max_utterances), max_wait_ms / 1000.0
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass

    async def submit(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The prediction rows of one request's utterance records (in input order)."""
        assert self._queue is not None, "MicroBatcher.start() was not awaited"
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(records, future))
        return await future

    async def _collect(self) -> list[_Pending]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        size = len(batch[0].records)
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while size < self.max_utterances:
            timeout = deadline - asyncio.get_running_loop().time()
            try:
                item = self._queue.get_nowait() if timeout <= 0 else await asyncio.wait_for(self._queue.get(), timeout)
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
            batch.append(item)
            size += len(item.records)
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            try:
                results = await asyncio.to_thread(self._predict_many, [p.records for p in batch])
            except Exception:  # noqa: BLE001 - isolate the request at fault
                results = []
                for p in batch:
                    try:
                        results.append((await asyncio.to_thread(self._predict_many, [p.records]))[0])
                    except Exception as exc:  # noqa: BLE001
                        results.append(exc)
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            for p, result in zip(batch, results):
                self.stats.requests += 1
                if p.future.done():  # the client went away
                    continue
                if isinstance(result, Exception):
                    p.future.set_exception(result)
                else:
                    p.future.set_result(result)

    def _predict_many(self, requests: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        combined = [{**r, "dialogue_id": f"{k}{_SEP}{r['dialogue_id']}"} for k, records in enumerate(requests)
                    for r in records]
        rows = self.predict(combined)
        out: list[list[dict[str, Any]]] = [[] for _ in requests]
        for row in rows:
            k, did = row["dialogue_id"].split(_SEP, 1)
            out[int(k)].append({**row, "dialogue_id": did})
        return out
