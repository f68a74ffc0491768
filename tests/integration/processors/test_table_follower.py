"""The changelog follower (processors/table_follower.py, real broker): it writes the records of every
changelog partition not active on this worker to the tables, nothing while a rebalance is on (paused),
never a partition that became active, and stops only the partition of a record the store cannot take."""

from __future__ import annotations

import time
from pathlib import Path

from processors.table_follower import TableFollower
from tests.integration.processors.conftest import make_hub, short_topology_file  # noqa: F401 - fixture
from tests.integration.processors.helpers import close_offline, disk_store, offline_processors, write_records


def _ticks(follower: TableFollower, until: int, timeout: float = 20.0) -> int:
    """Tick like the worker's timer until `until` records were written (or the time is up)."""
    written, deadline = 0, time.monotonic() + timeout
    while written < until and time.monotonic() < deadline:
        written += follower.tick()
        time.sleep(0.05)
    return written


def test_the_follower_keeps_the_partitions_not_active_here_and_none_during_a_rebalance(
    kafka_bootstrap: str,
    tmp_path: Path,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    processors = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path)
    processors.check_local_state()
    follower = processors.start_follower()
    assert follower is not None  # the default: standby copies kept by the follower
    topic = processors.dedupe_changelog
    try:
        follower.follow([])  # nothing active here: every partition followed
        write_records(kafka_bootstrap, [(topic, b'"a"', b'{"at":1.0}', 0), (topic, b'"b"', b'{"at":2.0}', 1)])
        assert _ticks(follower, 2) == 2
        store = disk_store(processors.dedupe_table)
        assert dict(store.items()) == {"a": {"at": 1.0}, "b": {"at": 2.0}}
        assert store.persisted_offsets() == {0: 0, 1: 0} and follower.applied == 2

        follower.pause()  # a rebalance starts: Faust's recovery reads the offsets from here on
        write_records(kafka_bootstrap, [(topic, b'"c"', b'{"at":3.0}', 0), (topic, b'"d"', b'{"at":4.0}', 1)])
        time.sleep(1)
        assert follower.tick() == 0 and store.persisted_offsets() == {0: 0, 1: 0}

        follower.follow([(topic, 0)])  # partition 0 is active here now: Faust's, not the follower's
        assert _ticks(follower, 1) == 1
        time.sleep(1)
        assert follower.tick() == 0
        assert "c" not in store and store["d"] == {"at": 4.0} and store.persisted_offsets() == {0: 0, 1: 1}

        # A record the store cannot take stops its partition only, before that record.
        write_records(
            kafka_bootstrap,
            [(topic, b'"e"', b"not json", 1), (topic, b'"f"', b'{"at":6.0}', 1), (topic, b'"g"', b'{"at":7.0}', 2)],
        )
        assert _ticks(follower, 1) == 1
        time.sleep(1)
        follower.tick()
        assert "e" not in store and "f" not in store and store["g"] == {"at": 7.0}
        assert store.persisted_offsets()[1] == 1  # where Faust's recovery resumes if partition 1 comes here
    finally:
        follower.close()
        close_offline(processors)


def test_no_follower_without_standby_copies_or_in_faust_mode(
    kafka_bootstrap: str,
    tmp_path: Path,
    short_topology_file: Path,  # noqa: F811
) -> None:
    topology = make_hub(short_topology_file, kafka_bootstrap)
    for overrides in ({"standby_replicas": 0}, {"standby_mode": "faust"}):
        processors = offline_processors(kafka_bootstrap, topology, short_topology_file, tmp_path, **overrides)
        assert processors.start_follower() is None and processors.app.follower is None
        close_offline(processors)
