"""The offset guard: a record lost inside the worker is never committed over, and is routed first;
the commit offset of a partition follows only what the router settled."""

from __future__ import annotations

from processors.offset_guard import Hole, OffsetGuard

TP = ("events.p2", 1)
OTHER = ("events.p2", 2)


def test_contiguous_records_route_and_the_commit_follows_them_once_settled() -> None:
    guard = OffsetGuard()
    guard.reset({TP: 10})
    assert guard.settled() == {TP: 10}  # the start: nothing new to commit
    for offset in range(10, 15):
        assert guard.check(TP, offset) is None
        guard.routed(TP, offset)
    assert guard.expected(TP) == 15
    assert guard.settled() == {TP: 10}  # routed, but its dead letters may not be written yet
    guard.settle([TP])
    assert guard.settled() == {TP: 15}
    assert list(guard.holes) == [] and guard.holes_found == 0


def test_a_hole_holds_the_commit_until_its_records_are_routed() -> None:
    guard = OffsetGuard()
    guard.reset({TP: 124, OTHER: 7})
    hole = guard.check(TP, 130)  # 124..129 were dropped inside Faust
    assert hole == Hole(TP, 124, 130)
    assert hole.size == 6
    guard.settle([TP])
    assert guard.settled() == {TP: 124, OTHER: 7}  # nothing past the first record not routed
    for offset in range(124, 130):  # the records read from Kafka, routed in order
        guard.routed(TP, offset)
    guard.filled(hole)
    assert guard.check(TP, 130) is None
    guard.routed(TP, 130)
    guard.settle([TP])
    assert guard.settled() == {TP: 131, OTHER: 7}
    assert list(guard.holes) == [hole] and guard.holes_found == 1


def test_a_hole_whose_records_do_not_exist_is_passed_once_filled() -> None:
    guard = OffsetGuard()
    guard.reset({TP: 0})
    hole = guard.check(TP, 3)
    assert hole is not None
    guard.filled(hole)  # the fill found nothing (a compacted or transactional topic)
    assert guard.expected(TP) == 3
    assert guard.check(TP, 3) is None


def test_records_fetched_again_are_behind_and_never_move_the_commit_back() -> None:
    guard = OffsetGuard()
    guard.reset({TP: 5})
    for offset in (5, 6):
        assert not guard.behind(TP, offset)
        guard.routed(TP, offset)
    assert guard.behind(TP, 5) and guard.behind(TP, 6) and not guard.behind(TP, 7)
    guard.routed(TP, 5)  # a stray replay does not move the expected offset
    assert guard.expected(TP) == 7
    guard.settle([TP])
    assert guard.settled() == {TP: 7}


def test_partitions_it_does_not_know_are_left_alone_and_reset_forgets_the_old_assignment() -> None:
    guard = OffsetGuard()
    assert guard.check(TP, 99) is None and not guard.behind(TP, 99)
    guard.settle([TP])
    assert guard.settled() == {}
    guard.reset({TP: 0})
    guard.reset({OTHER: 3})  # rebalanced: TP is gone, so is its commit offset
    assert guard.settled() == {OTHER: 3}
    assert guard.check(TP, 50) is None
    assert guard.expected(OTHER) == 3


def test_only_the_latest_holes_are_kept_but_all_are_counted() -> None:
    guard = OffsetGuard()
    guard.reset({TP: 0})
    for n in range(150):  # every other offset lost, each found and filled
        hole = guard.check(TP, 2 * n + 1)
        assert hole is not None
        guard.filled(hole)
        guard.routed(TP, 2 * n + 1)
    assert guard.holes_found == 150
    assert len(guard.holes) == 100 and guard.holes[-1] == Hole(TP, 298, 299)
