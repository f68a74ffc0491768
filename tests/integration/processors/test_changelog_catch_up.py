"""The tables' bulk catch-up before Faust starts (processors/changelog_catch_up.py, real broker): a new
directory gets every changelog up to its end with the same entries, tombstones and offsets as Faust's
recovery; a kept directory reads only the records after its offsets; a record the codecs refuse stops
the catch-up there, with what came before it applied and noted."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.integration.processors.conftest import make_hub, short_topology_file  # noqa: F401 - fixture
from tests.integration.processors.helpers import close_offline, disk_store, offline_processors, write_records

HOP = {"event_id": "e1", "hop": "routed", "at": "2026-11-30T10:00:00Z", "service": "processors", "detail": {}}


def test_a_new_directory_reads_each_changelog_to_its_end_and_a_kept_one_only_the_rest(
    kafka_bootstrap: str,
    tmp_path: Path,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    first = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    dedupe_topic, trail_topic = first.dedupe_changelog, first.trail_changelog
    # Records as the routers write them: dedupe with JSON keys, the trail index with raw keys.
    write_records(
        kafka_bootstrap,
        [
            (dedupe_topic, b'"k1"', b'{"at":1.0}', 0),
            (dedupe_topic, b'"k2"', b'{"at":2.0}', 1),
            (dedupe_topic, b'"k1"', b'{"at": 3.0}', 0),  # the same key again: the last one wins
            (dedupe_topic, b'"k2"', None, 1),  # a tombstone
            (dedupe_topic, b'"k3"', b'{"at":4.0}', 1),
            (trail_topic, b"e1/0/000000000007", orjson.dumps(HOP), 0),
        ],
    )
    first.check_local_state()
    assert first.catch_up_tables() == {"dedupe": 5, "scheduled": 0, "trail-index": 1}
    dedupe, trail = disk_store(first.dedupe_table), disk_store(first.trail_table)
    assert dict(dedupe.items()) == {"k1": {"at": 3.0}, "k3": {"at": 4.0}}
    assert dedupe.persisted_offsets() == {0: 1, 1: 2}  # where Faust's recovery starts: nothing left
    assert dict(trail.items()) == {b"e1/0/000000000007": HOP} and trail.persisted_offsets() == {0: 0}
    assert first.dedupe_table.data.recovered == 5  # counted as recovered, like Faust's reads (/health)
    close_offline(first)

    write_records(kafka_bootstrap, [(dedupe_topic, b'"k4"', b'{"at":5.0}', 0)])  # written while it was down
    again = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    again.check_local_state()  # the directory is kept: its offsets are the changelog's
    assert again.catch_up_tables() == {"dedupe": 1, "scheduled": 0, "trail-index": 0}
    dedupe = disk_store(again.dedupe_table)
    assert dict(dedupe.items()) == {"k1": {"at": 3.0}, "k3": {"at": 4.0}, "k4": {"at": 5.0}}
    assert dedupe.persisted_offsets() == {0: 2, 1: 2}
    assert again.catch_up_tables() == {"dedupe": 0, "scheduled": 0, "trail-index": 0}  # at the end: nothing
    close_offline(again)


def test_a_record_the_codecs_refuse_stops_the_catch_up_after_what_came_before(
    kafka_bootstrap: str,
    tmp_path: Path,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    processors = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    topic = processors.dedupe_changelog
    write_records(
        kafka_bootstrap,
        [
            (topic, b'"ok"', b'{"at":1.0}', 0),
            (topic, b'"bad"', b"not json", 0),
            (topic, b'"after"', b'{"at":2.0}', 0),
        ],
    )
    processors.check_local_state()
    assert processors.catch_up_tables()["dedupe"] == 1
    dedupe = disk_store(processors.dedupe_table)
    # The record before the bad one is applied and noted: Faust's recovery resumes at the bad one.
    assert dict(dedupe.items()) == {"ok": {"at": 1.0}} and dedupe.persisted_offsets() == {0: 0}
    close_offline(processors)


def test_off_it_reads_nothing(
    kafka_bootstrap: str,
    tmp_path: Path,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    processors = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path, changelog_catch_up=False)
    write_records(kafka_bootstrap, [(processors.dedupe_changelog, b'"k"', b'{"at":1.0}', 0)])
    processors.check_local_state()
    assert processors.catch_up_tables() == {}
    dedupe = disk_store(processors.dedupe_table)
    assert dict(dedupe.items()) == {} and dedupe.persisted_offsets() == {}  # Faust's recovery reads it all
    close_offline(processors)
