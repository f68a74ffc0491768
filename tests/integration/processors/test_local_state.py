"""The tables' databases across worker starts (processors/app.py `check_local_state`, real broker): kept
with their changelog offsets when written from the same changelog topic, emptied when an offset is past
the topic's end, when the topic was deleted and created again (a new topic id under the same name), or
when retention deleted records after the database's offset before it read them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from hub.kafka_config import admin_config, producer_config
from tests.integration.processors.conftest import make_hub, short_topology_file  # noqa: F401 - fixture
from tests.integration.processors.helpers import close_offline, disk_store, offline_processors


def test_local_tables_are_kept_only_for_the_changelog_they_were_written_from(
    kafka_bootstrap: str,
    tmp_path: Path,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    first = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    first.check_local_state()  # a new directory: the changelog's identity is recorded
    store = disk_store(first.dedupe_table)
    source = store.source
    assert source is not None and source.startswith(f"{first.dedupe_changelog}:")
    # A dedupe entry and its changelog record, as the router writes them: the offset is noted once
    # the broker has the record.
    store["k"] = {"at": 1.0}
    first.outputs.produce_changelog(first.dedupe_changelog, b'"k"', b'{"at":1.0}', 0, first.dedupe_table)
    asyncio.run(first.outputs.flush())
    assert store.persisted(0) == 0
    close_offline(first)

    kept = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    kept.check_local_state()
    store = disk_store(kept.dedupe_table)
    assert store["k"] == {"at": 1.0} and store.persisted_offsets() == {0: 0} and store.source == source
    store.persist(1, 5)  # partition 1 of the changelog is empty: an offset from another life
    close_offline(kept)

    past_end = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    past_end.check_local_state()
    store = disk_store(past_end.dedupe_table)
    assert "k" not in store and store.persisted_offsets() == {} and store.source == source
    store["k"] = {"at": 2.0}
    store.persist(0, 0)
    close_offline(past_end)

    # The changelog topic deleted and created again: the same name, a new topic id.
    admin = AdminClient(admin_config(kafka_bootstrap))
    admin.delete_topics([past_end.dedupe_changelog], operation_timeout=30)[past_end.dedupe_changelog].result(30)
    deadline = time.monotonic() + 30
    while past_end.dedupe_changelog in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    recreated = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)  # creates it again
    recreated.check_local_state()
    store = disk_store(recreated.dedupe_table)
    assert "k" not in store and store.persisted_offsets() == {}
    assert store.source is not None and store.source != source
    close_offline(recreated)


def test_a_database_that_missed_records_deleted_by_retention_is_dropped(
    kafka_bootstrap: str,
    tmp_path: Path,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    first = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    first.check_local_state()
    topic = first.dedupe_changelog
    store = disk_store(first.dedupe_table)
    store["k"] = {"at": 1.0}
    first.outputs.produce_changelog(topic, b'"k"', b'{"at":1.0}', 0, first.dedupe_table)
    asyncio.run(first.outputs.flush())
    assert store.persisted(0) == 0
    close_offline(first)
    producer = Producer(producer_config(kafka_bootstrap, client_id="test-local-state"))
    for key in (b'"k2"', b'"k3"'):  # offsets 1 and 2, written while that database was away
        producer.produce(topic, b'{"at":2.0}', key, partition=0)
    assert producer.flush(30) == 0
    admin = AdminClient(admin_config(kafka_bootstrap))

    def delete_before(offset: int) -> None:  # what the changelog's retention does to old segments
        for future in admin.delete_records([TopicPartition(topic, 0, offset)]).values():
            future.result(30)

    delete_before(1)  # offset 0, which the database holds: nothing it has not read is gone
    kept = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    kept.check_local_state()
    store = disk_store(kept.dedupe_table)
    assert store["k"] == {"at": 1.0} and store.persisted_offsets() == {0: 0}
    close_offline(kept)

    delete_before(2)  # offset 1 is gone before this database read it
    dropped = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    dropped.check_local_state()
    store = disk_store(dropped.dedupe_table)
    assert "k" not in store and store.persisted_offsets() == {}
    assert dropped.catch_up_tables()["dedupe"] == 1  # the whole changelog is read again: offset 2 is left
    assert dict(store.items()) == {"k3": {"at": 2.0}} and store.persisted_offsets() == {0: 2}
    close_offline(dropped)
