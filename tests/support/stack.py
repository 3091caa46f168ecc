"""Test helpers: run a service in-process against the real database and broker, consume topics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi import FastAPI

from shared.events import CloudEvent, EventData

T = TypeVar("T")


def settings_from(cls: type[T], env: dict[str, str], **overrides: Any) -> T:
    """Return ``cls(**overrides)`` read with ``env`` set (usable in fixtures of any scope)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        return cls(**overrides)


async def publish(producer: AIOKafkaProducer, event: EventData, *, event_id: str | None = None) -> str:
    """Publish ``event`` the way a service's outbox relay would; return the envelope id."""
    envelope = CloudEvent.wrap(event, source="test", event_id=event_id)
    await producer.send_and_wait(
        event.topic, envelope.model_dump_json().encode(), key=event.partition_key().encode()
    )
    return envelope.id


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan (consumers, relay) and yield a client that calls it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def wait_until(
    check: Callable[[], Any], *, timeout_s: float = 30, interval_s: float = 0.05, message: str = "condition"
) -> Any:
    """Return the first truthy result of ``check`` (sync or async), polling until ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{message} not met within {timeout_s}s")
        await asyncio.sleep(interval_s)


class TopicReader:
    """Reads a topic from the beginning without a consumer group (nothing is committed)."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.records: list[Any] = []

    async def __aenter__(self) -> TopicReader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def wait_for(
        self, match: Callable[[Any], bool], *, count: int = 1, timeout_s: float = 30, raw: bool = False
    ) -> list[Any]:
        """Return the decoded values of the first ``count`` records that match.

        ``match`` sees JSON objects only (topics may hold poison records other tests parked there);
        with ``raw=True`` it sees every value, undecodable ones as bytes.
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = [v for v in self.values() if (raw or isinstance(v, dict)) and match(v)]
            if len(found) >= count:
                return found[:count]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"{len(found)} of {count} matching records within {timeout_s}s")
            batch = await self.consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for records in batch.values():
                self.records.extend(records)

    async def read_to_end(self) -> list[Any]:
        """Read everything the topic holds right now; return the decoded values."""
        partitions = self.consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in partitions]
        end = await self.consumer.end_offsets(tps)
        for tp in tps:
            while await self.consumer.position(tp) < end[tp]:
                batch = await self.consumer.getmany(tp, timeout_ms=500)
                for records in batch.values():
                    self.records.extend(records)
        return self.values()

    def values(self) -> list[Any]:
        out = []
        for r in self.records:
            try:
                out.append(json.loads(r.value))
            except ValueError:
                out.append(r.value)
        return out
