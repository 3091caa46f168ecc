"""Reading, replaying and purging the dead-letter topics (``<topic>.dlq``).

Kafka keeps what is parked until retention removes it (and Tansu, the dev broker, cannot delete
records), so what has been dealt with is marked, not deleted: the consumer group ``closeloop-dlq``
commits, per dead-letter partition, the offset up to which records were replayed or purged.
*Pending* records are the ones after that mark; ``closeloop dlq`` and the
``closeloop_dead_letters_pending`` metric count those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.kafka import create_consumer, create_producer
from shared.observability import DEAD_LETTERS_PENDING
from shared.rows import from_row
from shared.settings import KafkaSettings
from shared.worker import Worker

CURSOR_GROUP = "closeloop-dlq"
DLQ_SUFFIX = ".dlq"
DLQ_HEADER_PREFIX = "dlq_"


def dlq_name(topic: str) -> str:
    """Return the dead-letter topic of ``topic`` (given either name)."""
    return topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX


@dataclass
class Parked:
    """One dead-lettered record."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    @property
    def original_topic(self) -> str:
        return self.header("dlq_original_topic") or self.topic.removesuffix(DLQ_SUFFIX)

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the record had before it was parked (its CloudEvents ``ce_`` headers …)."""
        return [(k, v) for k, v in self.headers if not k.startswith(DLQ_HEADER_PREFIX)]

    def describe(self) -> dict[str, Any]:
        try:
            value: Any = json.loads(self.value) if self.value is not None else None
        except ValueError:
            value = (self.value or b"").decode(errors="replace")
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "parked_at": datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).isoformat(timespec="seconds"),
            "original_topic": self.original_topic,
            "key": self.key.decode(errors="replace") if self.key is not None else None,
            "event_id": self.header("ce_id"),
            "event_type": self.header("ce_type"),
            "consumer": self.header("dlq_consumer"),
            "attempts": self.header("dlq_attempts"),
            "error": self.header("dlq_error"),
            "value": value,
        }


@dataclass
class Backlog:
    """Pending records of one dead-letter topic: per partition, from the mark to the end."""

    topic: str
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return sum(end - start for start, end in self.ranges.values())


class DeadLetters:
    """Lists, reads, replays and purges dead-letter topics; use as ``async with``."""

    def __init__(self, kafka: KafkaSettings, *, group: str = CURSOR_GROUP) -> None:
        self.kafka = kafka
        self.group = group
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> DeadLetters:
        # Partitions are assigned by hand: the group only stores the marks, it never rebalances.
        self.consumer = create_consumer(self.kafka, group_id=self.group, topics=[], static=False)
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.producer is not None:
            await self.producer.stop()
        if self.consumer is not None:
            await self.consumer.stop()

    def _consumer(self) -> AIOKafkaConsumer:
        assert self.consumer is not None, "use DeadLetters as an async context manager"
        return self.consumer

    async def topics(self) -> list[str]:
        """Every dead-letter topic the cluster has."""
        return sorted(t for t in await self._consumer().topics() if t.endswith(DLQ_SUFFIX))

    async def backlog(self, topic: str) -> Backlog:
        consumer = self._consumer()
        name = dlq_name(topic)
        partitions = consumer.partitions_for_topic(name)
        if partitions is None:
            await consumer.topics()  # refresh the metadata once
            partitions = consumer.partitions_for_topic(name)
        if not partitions:
            raise LookupError(f"no topic {name}")
        tps = [TopicPartition(name, p) for p in sorted(partitions)]
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        backlog = Backlog(name)
        for tp in tps:
            committed = await consumer.committed(tp)
            start = max(begin[tp], committed or 0)
            backlog.ranges[tp.partition] = (start, max(start, end[tp]))
        return backlog

    async def read(self, backlog: Backlog, *, limit: int | None = None) -> list[Parked]:
        """Return the pending records of ``backlog`` (partition by partition, in offset order)."""
        consumer = self._consumer()
        out: list[Parked] = []
        for partition, (start, end) in backlog.ranges.items():
            if start >= end:
                continue
            tp = TopicPartition(backlog.topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, start)
            position, idle = start, 0
            while position < end and (limit is None or len(out) < limit) and idle < 10:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                idle = 0 if batch else idle + 1
                for record in batch.get(tp, []):
                    if record.offset >= end or (limit is not None and len(out) >= limit):
                        break
                    out.append(_parked(record))
                    position = record.offset + 1
        return out

    async def mark(self, topic: str, offsets: dict[int, int]) -> None:
        """Record that the records before ``offsets`` (per partition) have been dealt with."""
        if offsets:
            commits = {TopicPartition(topic, p): o for p, o in offsets.items()}
            self._consumer().assign(list(commits))  # aiokafka commits only for assigned partitions
            await self._consumer().commit(commits)

    async def replay(self, records: list[Parked]) -> int:
        """Publish each record again to its original topic, with its original key and headers (the
        consumers' inbox makes an already handled event a no-op); then mark them dealt with."""
        if self.producer is None:
            self.producer = create_producer(self.kafka, client_id="closeloop-dlq")
            await self.producer.start()
        for record in records:
            await self.producer.send_and_wait(
                record.original_topic, value=record.value, key=record.key, headers=record.original_headers
            )
        if records:
            topic = records[0].topic
            await self.mark(topic, _after(records))
        return len(records)


def _after(records: list[Parked]) -> dict[int, int]:
    offsets: dict[int, int] = {}
    for record in records:
        offsets[record.partition] = max(offsets.get(record.partition, 0), record.offset + 1)
    return offsets


def _parked(record: ConsumerRecord) -> Parked:
    return from_row(Parked, record, timestamp_ms=record.timestamp, headers=list(record.headers or ()))


class DeadLetterMonitor(Worker):
    """Sets ``closeloop_dead_letters_pending`` for the dead-letter topics of a service's topics."""

    name = "dlq_metrics"

    def __init__(self, kafka: KafkaSettings, topics: list[str], *, poll_interval_s: float = 30.0) -> None:
        super().__init__(poll_interval_s=poll_interval_s, batch=1_000_000)
        self.kafka = kafka
        self.topics = [dlq_name(t) for t in topics]
        self._letters: DeadLetters | None = None

    async def before_pass(self) -> None:
        if self._letters is None:
            letters = DeadLetters(self.kafka)
            await letters.__aenter__()
            self._letters = letters

    async def work_once(self) -> int:
        assert self._letters is not None
        for topic in self.topics:
            try:
                backlog = await self._letters.backlog(topic)
            except LookupError:
                continue
            DEAD_LETTERS_PENDING.labels(topic).set(backlog.pending)
        return 0

    async def after_run(self) -> None:
        if self._letters is not None:
            await self._letters.__aexit__(None, None, None)
            self._letters = None
