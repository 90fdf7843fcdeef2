"""train.max_seconds: the default follows the task's budget, and the watchdog stops, then ends, a
training that outlives it (nascli.train.time_limit; the processes are in
tests/integration/test_hung_evaluations.py)."""

from __future__ import annotations

import threading
import time

import pytest

from nascli.config import resolve, task_for
from nascli.errors import NascliError
from nascli.train.time_limit import EXIT_HUNG_EVALUATION, Watchdog, limit_seconds

GENOME = "In_8_8:C_3-3-1-1-16:D_10"


def limit_of(*overrides: str) -> float:
    return limit_seconds(task_for(resolve(overrides=list(overrides)), GENOME, 0))


def test_the_default_limit_follows_the_task_budget() -> None:
    assert limit_of("train.epochs=10") == 600 + 600 * 10
    assert limit_of("train.epochs=10", "train.kfolds=5") == (600 + 600 * 10) * 5
    assert limit_of("train.epochs=10", "train.mode=proxy") == 600 + 600
    assert limit_of("task.kind=synthetic", "task.dataset=synthetic", "task.synthetic_seconds=30") == 60 + 4 * 30
    assert limit_of("train.epochs=10", "train.max_seconds=90") == 90
    assert limit_of("train.max_seconds=none") == 600 + 600 * 100


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan"])
def test_a_limit_must_be_a_positive_finite_number(value: str) -> None:
    with pytest.raises(NascliError, match="train.max_seconds"):
        resolve(overrides=[f"train.max_seconds={value}"])


class Recorder:
    def __init__(self) -> None:
        self.expired = threading.Event()
        self.exit_codes: list[int] = []
        self.exited = threading.Event()

    def exit_process(self, code: int) -> None:
        self.exit_codes.append(code)
        self.exited.set()


def test_past_the_limit_the_heartbeat_stops_and_past_the_grace_the_process_ends() -> None:
    seen = Recorder()
    watchdog = Watchdog(exit_process=seen.exit_process)
    limit = watchdog.arm(7, 0.2, 0.3, seen.expired.set)
    assert seen.expired.wait(5) and limit.expired.is_set()
    assert limit.elapsed >= 0.2 and not seen.exited.is_set()
    assert seen.exited.wait(5) and seen.exit_codes == [EXIT_HUNG_EVALUATION]
    assert limit.elapsed >= 0.5


def test_an_evaluation_that_returns_in_time_or_within_the_grace_is_left_alone() -> None:
    seen = Recorder()
    watchdog = Watchdog(exit_process=seen.exit_process)
    in_time = watchdog.arm(1, 100.0, 0.2, seen.expired.set)  # the thread sleeps towards 100 s
    watchdog.disarm(in_time)
    stopped = watchdog.arm(2, 0.1, 0.3, seen.expired.set)  # the next evaluation: the thread is reused
    assert seen.expired.wait(5) and stopped.expired.is_set() and not in_time.expired.is_set()
    watchdog.disarm(stopped)  # returned within the grace: recorded as timeout, the process goes on
    time.sleep(0.6)
    assert seen.exit_codes == []


def test_launchers_name_the_hung_evaluation_exit() -> None:
    from nascli.gpu_launcher import exit_reason
    from nascli.local_workers import RESTART_CODES

    assert exit_reason(EXIT_HUNG_EVALUATION) == "hung evaluation"
    assert EXIT_HUNG_EVALUATION in RESTART_CODES
