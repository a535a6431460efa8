"""The wait estimate's rule (telemed/estimate.py), case by case."""

from __future__ import annotations

from telemed.estimate import (
    MIN_VISIT_S,
    NO_DOCTOR,
    SHORTLY,
    SHORTLY_S,
    ClinicLoad,
    WaitEstimate,
    WaitKind,
    estimate_waits,
    visit_length,
)

FIFTEEN_MIN = 900.0


def one(rank: int, load: ClinicLoad) -> WaitEstimate:
    (estimate,) = estimate_waits([rank], load)
    return estimate


def test_the_first_patient_with_an_idle_doctor_is_seen_shortly() -> None:
    idle = ClinicLoad(doctors_on_duty=1, busy_for_s=[], visit_lengths_s=[], default_visit_s=FIFTEEN_MIN)
    assert one(0, idle) == SHORTLY
    assert (SHORTLY.kind, SHORTLY.low_s, SHORTLY.high_s) == (WaitKind.SHORTLY, 0, SHORTLY_S)
    # The second waits for a visit: not "shortly", and not less than a visit.
    second = one(1, idle)
    assert second.kind is WaitKind.RANGE
    assert second.expected_s >= 0.8 * FIFTEEN_MIN and second.low_s < FIFTEEN_MIN < second.high_s


def test_as_many_patients_as_free_doctors_are_seen_shortly() -> None:
    load = ClinicLoad(doctors_on_duty=3, busy_for_s=[300.0], visit_lengths_s=[], default_visit_s=FIFTEEN_MIN)
    assert load.free == 2
    shortly, shortly_too, waits = estimate_waits([0, 1, 2], load)
    assert shortly == shortly_too == SHORTLY
    assert waits.kind is WaitKind.RANGE


def test_no_doctor_on_duty_gives_no_estimate() -> None:
    nobody = ClinicLoad(doctors_on_duty=0, busy_for_s=[], visit_lengths_s=[600.0] * 10, default_visit_s=FIFTEEN_MIN)
    assert estimate_waits([0, 5], nobody) == [NO_DOCTOR, NO_DOCTOR]


def test_one_short_visit_does_not_collapse_everyone_s_estimate() -> None:
    def load(lengths: list[float]) -> ClinicLoad:
        return ClinicLoad(doctors_on_duty=1, busy_for_s=[0.0], visit_lengths_s=lengths, default_visit_s=FIFTEEN_MIN)

    before = estimate_waits(range(5), load([]))
    after = estimate_waits(range(5), load([40.0]))
    assert after == before  # fewer than MIN_SAMPLES lengths: the setting still rules
    assert visit_length(load([40.0] * 4)) == (FIFTEEN_MIN, visit_length(load([]))[1])
    # Enough very short visits count, but never below the floor.
    assert visit_length(load([40.0] * 5))[0] == MIN_VISIT_S
    third = one(2, load([40.0] * 5))
    assert third.expected_s >= 3 * MIN_VISIT_S and third.high_s >= 15 * 60


def test_enough_visit_lengths_replace_the_setting() -> None:
    load = ClinicLoad(doctors_on_duty=1, busy_for_s=[0.0], visit_lengths_s=[300.0, 360.0, 240.0, 300.0, 300.0],
                      default_visit_s=FIFTEEN_MIN)
    length, cv = visit_length(load)
    assert length == 300.0 and 0.3 <= cv < 0.5
    assert one(3, load).expected_s < one(3, ClinicLoad(1, [0.0], [], FIFTEEN_MIN)).expected_s / 2


def test_ranges_are_ranges_on_a_five_minute_grid_and_grow_with_the_place() -> None:
    load = ClinicLoad(doctors_on_duty=2, busy_for_s=[120.0, 600.0], visit_lengths_s=[700.0, 900.0, 800.0, 1000.0, 600.0],
                      default_visit_s=FIFTEEN_MIN)
    waits = estimate_waits(range(10), load)
    assert all(w.kind is WaitKind.RANGE for w in waits)
    assert all(w.low_s < w.high_s and w.low_s % 300 == 0 and w.high_s % 300 == 0 for w in waits)
    assert [w.expected_s for w in waits] == sorted(w.expected_s for w in waits)
    assert waits[-1].low_s > waits[0].high_s
    # Beyond an hour the grid is a quarter of an hour.
    far = one(60, load)
    assert far.low_s >= 3600 and far.low_s % 900 == 0 and far.high_s % 900 == 0


def test_more_doctors_shorter_waits_and_the_same_state_gives_the_same_answer() -> None:
    lengths = [900.0] * 10
    one_doctor = ClinicLoad(1, [300.0], lengths, FIFTEEN_MIN)
    three_doctors = ClinicLoad(3, [300.0, 100.0, 700.0], lengths, FIFTEEN_MIN)
    assert one(5, three_doctors).expected_s < one(5, one_doctor).expected_s / 2
    assert estimate_waits(range(8), three_doctors) == estimate_waits(range(8), three_doctors)


def test_a_visit_near_its_end_frees_the_doctor_sooner() -> None:
    lengths = [900.0] * 10
    just_started = one(0, ClinicLoad(1, [0.0], lengths, FIFTEEN_MIN))
    nearly_done = one(0, ClinicLoad(1, [840.0], lengths, FIFTEEN_MIN))
    assert nearly_done.expected_s < just_started.expected_s / 2
    # A visit left open for hours still promises a little more time, never a negative one.
    forgotten = one(0, ClinicLoad(1, [8 * 3600.0], lengths, FIFTEEN_MIN))
    assert forgotten.kind is WaitKind.RANGE and forgotten.expected_s > 0 and forgotten.high_s >= 300


def test_less_urgent_patients_are_given_more_room_upwards() -> None:
    lengths = [900.0] * 10
    # Two patients at level 2, then three at level 5: rank 2 is a level 5.
    load = ClinicLoad(1, [0.0], lengths, FIFTEEN_MIN, queued_by_acuity=[0, 2, 0, 0, 3])
    assert [load.acuity_at(r) for r in range(6)] == [2, 2, 5, 5, 5, 3]
    as_level_5 = one(2, load)
    as_level_2 = one(2, ClinicLoad(1, [0.0], lengths, FIFTEEN_MIN, queued_by_acuity=[0, 5]))
    assert as_level_5.expected_s == as_level_2.expected_s
    assert as_level_5.high_s > as_level_2.high_s and as_level_5.low_s == as_level_2.low_s


def test_a_long_queue_is_estimated_in_one_pass() -> None:
    load = ClinicLoad(4, [100.0, 200.0, 300.0, 400.0], [600.0] * 50, FIFTEEN_MIN, [0, 0, 2000])
    waits = estimate_waits(range(2000), load)
    assert len(waits) == 2000
    assert [w.expected_s for w in waits] == sorted(w.expected_s for w in waits)
    assert waits[-1].low_s > 2000 * 660 / 4 * 0.8
