"""The patient's wait estimate: "shortly", a range of minutes, or no estimate.

Pure (no Redis, no clock), so the rule can be read in one place, unit-tested
and run inside a simulation of a clinic's day (tests/test_estimate_simulation.py).
The node reads a :class:`ClinicLoad` and every local patient's rank in one
script call per push round, then calls :func:`estimate_waits` once for all of them.

The rule (docs/architecture.md, "The waiting room"):

1. No doctor on duty (none seen within ``TELEMED_ON_DUTY``, :mod:`telemed.duty`):
   no estimate; the page says that the wait starts once a doctor is online.
2. A doctor is free (on duty and in no visit) for this patient, i.e. the
   patient's 0-based rank is below the number of free doctors: "shortly"
   (promised as within :data:`SHORTLY_S`).
3. Otherwise the patient waits for the k-th doctor to finish, k = rank - free + 1.
   Visits last the rolling mean of the last visit lengths once there are
   :data:`MIN_SAMPLES` of them (else the clinic's setting), never less than
   :data:`MIN_VISIT_S`, spread log-normally with the lengths' measured
   coefficient of variation (:data:`DEFAULT_CV` until measured); a doctor needs
   :data:`HANDOVER_S` between visits. The doctors' work is replayed
   :data:`DRAWS` times with a fixed seed (each running visit drawn given how
   long it has lasted but at least :data:`RESIDUAL_FLOOR` of a visit more,
   the doctor free first takes the next patient): the
   range spans the 10th to 90th percentile of the patient's start, widened
   upwards by a share of the expected wait that grows as the patient's ESI
   level is less urgent (:data:`LATER_URGENT`: more urgent patients who arrive
   later are seen first), and rounded outwards to 5 minutes (15 above an hour,
   30 above three).
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist

#: Visit lengths needed before their mean replaces the setting: one short
#: visit (a test call, a patient who hung up) must not tell everyone "1 minute".
MIN_SAMPLES = 5

#: Floor of the visit length used, in seconds, whatever the samples say.
MIN_VISIT_S = 180.0

#: A running visit is expected to need at least this share of a visit more,
#: however long it has lasted (one left open by mistake does not promise
#: the next patient a doctor at once).
RESIDUAL_FLOOR = 0.1

#: Seconds a doctor needs between visits (closing one, admitting the next);
#: not in the measured visit lengths, which run from admit to end.
HANDOVER_S = 60.0

#: Spread of visit lengths (standard deviation ÷ mean) assumed until measured,
#: and the bounds a measured one is held to.
DEFAULT_CV = 0.6
CV_MIN = 0.3
CV_MAX = 1.5

#: The range spans these quantiles of the replayed waits.
LOW_Q = 0.1
HIGH_Q = 0.9

#: Replays of the doctors' work per estimate, how many places each replays
#: (places further back extrapolate), and the seed of their random draws.
DRAWS = 64
REPLAY_RANKS = 25
SEED = 12

_Z_HIGH = NormalDist().inv_cdf(HIGH_Q)

#: Upward allowance, as a share of the expected wait, for more urgent patients
#: who arrive later and are seen first, by the patient's ESI level: nobody
#: overtakes a level 1, almost everyone may overtake a level 5. Calibrated with
#: the simulated day of tests/test_estimate_simulation.py.
LATER_URGENT = {1: 0.0, 2: 0.1, 3: 0.3, 4: 0.8, 5: 2.0}

#: Level assumed when the queue's levels are not known.
DEFAULT_ACUITY = 3

#: What "shortly" promises: a free doctor admits within this many seconds.
SHORTLY_S = 300


class WaitKind(StrEnum):
    SHORTLY = "shortly"
    """A doctor is free for this patient: next, within :data:`SHORTLY_S`."""
    RANGE = "range"
    """Between ``low_s`` and ``high_s``."""
    NO_DOCTOR = "no_doctor"
    """No doctor on duty: no estimate can be honest."""


@dataclass(frozen=True)
class ClinicLoad:
    """What a clinic is doing now, as far as the estimate is concerned."""

    doctors_on_duty: int
    """Doctors seen within ``TELEMED_ON_DUTY`` (:mod:`telemed.duty`)."""
    busy_for_s: Sequence[float]
    """For each doctor on duty who is in a visit: seconds since that visit began."""
    visit_lengths_s: Sequence[float]
    """The latest visit lengths in seconds (admit to end), any order."""
    default_visit_s: float
    """The clinic's setting, used until there are :data:`MIN_SAMPLES` lengths."""
    queued_by_acuity: Sequence[int] = ()
    """How many patients wait at ESI level 1, 2, … 5 (the queue is in that
    order, so a rank tells the level); empty if not known."""

    def acuity_at(self, rank: int) -> int:
        """The ESI level of the patient at this 0-based rank."""
        ends = list(itertools.accumulate(self.queued_by_acuity))
        level = bisect.bisect_right(ends, rank) + 1
        return level if level <= len(ends) else DEFAULT_ACUITY

    @property
    def free(self) -> int:
        """Doctors on duty in no visit."""
        return max(0, self.doctors_on_duty - len(self.busy_for_s))


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    """What one patient is shown."""

    kind: WaitKind
    low_s: int
    """Lower end of the range in seconds (0 for "shortly" or no estimate)."""
    high_s: int
    """Upper end in seconds (:data:`SHORTLY_S` for "shortly", 0 for no estimate)."""
    expected_s: int
    """The expected wait before rounding (0 when there is no estimate)."""


NO_DOCTOR = WaitEstimate(WaitKind.NO_DOCTOR, 0, 0, 0)
SHORTLY = WaitEstimate(WaitKind.SHORTLY, 0, SHORTLY_S, 0)


def visit_length(load: ClinicLoad) -> tuple[float, float]:
    """The visit length (seconds, floored) and its coefficient of variation used."""
    samples = [float(s) for s in load.visit_lengths_s]
    if len(samples) < MIN_SAMPLES:
        return max(MIN_VISIT_S, float(load.default_visit_s)), DEFAULT_CV
    mean = statistics.fmean(samples)
    cv = statistics.pstdev(samples) / mean if mean > 0 else DEFAULT_CV
    return max(MIN_VISIT_S, mean), min(CV_MAX, max(CV_MIN, cv))


def estimate_waits(ranks: Sequence[int], load: ClinicLoad) -> list[WaitEstimate]:
    """The estimate for each 0-based queue rank (one call for a push round:
    the doctors' day is replayed once, up to the largest rank asked for).

    A node asks for thousands of ranks per round, so past the replayed ones
    (:meth:`_Replay.quantiles`' extrapolation and :func:`_range`) the
    arithmetic is inlined here: the same operations in the same order, so the
    same estimates (tests/test_estimate.py compares them), ~4x cheaper."""
    if load.doctors_on_duty <= 0:
        return [NO_DOCTOR for _ in ranks]
    free = load.free
    top = max(ranks, default=-1)
    if top < free:
        return [SHORTLY for _ in ranks]
    replay = _Replay(load, min(top + 1, REPLAY_RANKS))
    # where each level's patients end in the queue: a rank's level by bisection
    ends = list(itertools.accumulate(load.queued_by_acuity))
    allowance = [LATER_URGENT.get(level, 0.0) for level in range(1, len(ends) + 1)]
    allowance.append(LATER_URGENT[DEFAULT_ACUITY])  # beyond the counts (they were read apart)
    replayed = replay.replayed
    last = len(replayed) - 1
    last_low, last_mean, last_high = replayed[last]
    cycle, doctors, spread = replay.cycle, replay.doctors, _Z_HIGH * replay.sd_per_visit
    bisect_right, sqrt, ceil, make, kind = bisect.bisect_right, math.sqrt, math.ceil, WaitEstimate, WaitKind.RANGE
    out: list[WaitEstimate] = []
    for r in ranks:
        if r < free:
            out.append(SHORTLY)
            continue
        if r <= last:
            low, expected, high = replayed[r]
        else:  # _Replay.quantiles past the replayed ranks
            more = r - last
            shift = more * cycle / doctors
            width = spread * sqrt(more) / doctors
            low, expected, high = last_low + shift - width, last_mean + shift, last_high + shift + width
        # _range
        high += allowance[bisect_right(ends, r)] * expected
        step = 300 if high <= 3600 else 900 if high <= 3 * 3600 else 1800
        low_s = int((low if low > 0.0 else 0.0) // step) * step
        high_s = int(ceil(high / step)) * step
        out.append(make(kind, low_s, high_s if high_s > low_s + step else low_s + step, round(expected)))
    return out


class _Replay:
    """Start times of the next patients in :data:`DRAWS` replays of the doctors'
    work: each busy doctor's visit lasts a length drawn given what it has lasted
    so far, every further visit a fresh draw (log-normal with the clinic's mean
    and spread), and the doctor who is free first takes the next patient."""

    def __init__(self, load: ClinicLoad, ranks: int) -> None:
        length, cv = visit_length(load)
        self.cycle = length + HANDOVER_S
        self.doctors = max(load.doctors_on_duty, len(load.busy_for_s))
        self.sd_per_visit = cv * length
        sigma = math.sqrt(math.log(1 + cv * cv))
        mu = math.log(length) - sigma * sigma / 2
        normal = NormalDist(mu, sigma)
        rng = random.Random(SEED)  # the same clinic state always gives the same answer
        # Share of visits that would have ended by now, per running visit.
        done = [normal.cdf(math.log(max(elapsed, 1.0))) for elapsed in load.busy_for_s]
        starts: list[list[float]] = [[] for _ in range(ranks)]
        for _ in range(DRAWS):
            next_free = [0.0] * load.free
            for elapsed, p in zip(load.busy_for_s, done, strict=True):
                u = min(p + rng.random() * (1 - p), 1 - 1e-9)
                rest = max(math.exp(normal.inv_cdf(u)) - elapsed, RESIDUAL_FLOOR * length)
                next_free.append(rest + HANDOVER_S)
            heapq.heapify(next_free)
            for place in starts:
                t = heapq.heappop(next_free)
                place.append(t)
                heapq.heappush(next_free, t + rng.lognormvariate(mu, sigma) + HANDOVER_S)
        lo, hi = int(LOW_Q * DRAWS), int(HIGH_Q * DRAWS) - 1
        self.replayed = [(p[lo], statistics.fmean(p), p[hi]) for p in map(sorted, starts)]

    def quantiles(self, rank: int) -> tuple[float, float, float]:
        """(low, expected, high) start of the patient at this rank; past the
        replayed ranks, each further place adds a visit ÷ doctors, and spread."""
        last = min(rank, len(self.replayed) - 1)
        low, mean, high = self.replayed[last]
        more = rank - last
        if not more:
            return low, mean, high
        shift = more * self.cycle / self.doctors
        width = _Z_HIGH * self.sd_per_visit * math.sqrt(more) / self.doctors
        return low + shift - width, mean + shift, high + shift + width


def _range(low: float, expected: float, high: float, later_urgent: float) -> WaitEstimate:
    high += later_urgent * expected
    step = 300 if high <= 3600 else 900 if high <= 3 * 3600 else 1800
    low_s = int(max(0.0, low) // step) * step
    high_s = max(int(math.ceil(high / step)) * step, low_s + step)
    return WaitEstimate(WaitKind.RANGE, low_s, high_s, round(expected))
