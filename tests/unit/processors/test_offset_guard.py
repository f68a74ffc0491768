"""The offset guard: a record lost inside the worker is never committed over, and is routed first."""

from __future__ import annotations

from processors.offset_guard import Hole, OffsetGuard

TP = ("events.p2", 1)
OTHER = ("events.p2", 2)


def test_contiguous_records_route_and_the_commit_follows_them() -> None:
    guard = OffsetGuard()
    guard.reset({TP: 10})
    for offset in range(10, 15):
        assert guard.check(TP, offset) is None
        guard.routed(TP, offset)
    assert guard.expected(TP) == 15
    assert guard.cap({TP: 15}) == {TP: 15}
    assert guard.holes == []


def test_a_hole_caps_the_commit_until_its_records_are_routed() -> None:
    guard = OffsetGuard()
    guard.reset({TP: 124})
    hole = guard.check(TP, 130)  # 124..129 were dropped inside Faust
    assert hole == Hole(TP, 124, 130)
    assert hole.size == 6
    # Faust acked 130 and would commit 131: capped at the first record not routed.
    assert guard.cap({TP: 131, OTHER: 7}) == {TP: 124, OTHER: 7}
    for offset in range(124, 130):  # the records read from Kafka, routed in order
        guard.routed(TP, offset)
    guard.filled(hole)
    assert guard.check(TP, 130) is None
    guard.routed(TP, 130)
    assert guard.cap({TP: 131}) == {TP: 131}
    assert guard.holes == [hole]


def test_a_hole_whose_records_do_not_exist_is_passed_once_filled() -> None:
    guard = OffsetGuard()
    guard.reset({TP: 0})
    hole = guard.check(TP, 3)
    assert hole is not None
    guard.filled(hole)  # the fill found nothing (a compacted or transactional topic)
    assert guard.expected(TP) == 3
    assert guard.check(TP, 3) is None


def test_replayed_records_route_again_without_moving_the_expected_offset() -> None:
    guard = OffsetGuard()
    guard.reset({TP: 5})
    for offset in (5, 6):
        guard.routed(TP, offset)
    assert guard.check(TP, 5) is None  # same delivery ids; dedupe says REDELIVERY
    guard.routed(TP, 5)
    assert guard.expected(TP) == 7
    assert guard.cap({TP: 6}) == {TP: 6}  # never raises a commit


def test_partitions_it_does_not_know_are_left_alone_and_reset_forgets_the_old_assignment() -> None:
    guard = OffsetGuard()
    assert guard.check(TP, 99) is None
    assert guard.cap({TP: 100}) == {TP: 100}
    guard.reset({TP: 0})
    guard.reset({OTHER: 3})  # rebalanced: TP is gone, so is its cap
    assert guard.cap({TP: 100}) == {TP: 100}
    assert guard.check(TP, 50) is None
    assert guard.expected(OTHER) == 3

