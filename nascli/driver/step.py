"""The step loop: the `Driver` connects a pure ask/tell strategy to the store, and nothing else does.

Each `step()` folds the results finished since the last step into the strategy (in completion
`seq` order), asks it for children, and writes the population changes, the ask event, the
children's rows, their cache hits and their queued evaluations as one fenced transaction
(lease.py). `replay()` rebuilds the state from the database on `nas resume` (replay.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nascli.config import RunConfig, task_for, training_config_hash
from nascli.driver.events import ASK_EVENT, FAILED_EVENT, FINAL_EVENT, outcome_of
from nascli.driver.issue_plan import ALREADY_ISSUED, Enqueue, FromCache, IssuePlan, WaitForTwin, choose_action
from nascli.driver.lease import DriverLease, new_owner
from nascli.driver.population import PopulationChanges, PopulationMirror
from nascli.driver.progress import Progress
from nascli.driver.proxy_init import ProxyInitialisation
from nascli.driver.replay import RecordedAsk, distinct_asks, replay
from nascli.driver.strategy import build_strategy, layer_seed_genome
from nascli.driver.workers import live_worker_count
from nascli.errors import NascliError, StoreError
from nascli.ga.rng import stream_seed
from nascli.ga.strategies import Proposal, ReplayError, canonical_hash, planned_evaluations
from nascli.metrics import Ranking, value
from nascli.run_stop import (
    CLOCK_EVENT,
    CLOCK_EVERY_SECONDS,
    STOP_EVENT,
    RunState,
    StopLimits,
    StopReason,
    children_allowed,
    stop_reason,
)
from nascli.stop_rule import StopCurves
from nascli.store import EvaluationInfo, EvaluationRequest, FinishedEvaluation, NewIndividual, RunInfo, Store
from nascli.transfer import Donors

STATUS_CHECK_SECONDS = 0.5  # how often a driving loop looks for `nas cancel`


class RunCancelled(NascliError):
    """`nas cancel` stopped the run; its driver stops too."""


@dataclass
class Driver:
    """Drives one run. `step()` does one round of fold-and-propose; `drive()` loops until done."""

    store: Store
    run: RunInfo
    cfg: RunConfig
    owner: str = field(default_factory=new_owner)
    in_flight_target: int = 1  # asynchronous strategies keep this many children evaluating
    count_external_workers: bool = False  # `--workers 0`: size in_flight_target by the workers seen

    def __post_init__(self) -> None:
        # Klos #9: initial individuals are walked with proxy evaluations before the first ask
        self.proxy_init = ProxyInitialisation(self.cfg, layer_seed_genome(self.cfg)) if self.cfg.ga.init_proxy else None
        self.strategy = build_strategy(self.cfg, self.proxy_init.genomes if self.proxy_init else None)
        self.budget = planned_evaluations(self.cfg.model_dump(mode="json"))
        self.config_hash = training_config_hash(self.cfg)
        self.cache_scope = self.cfg.cache.scope
        self.cache_run = None if self.cache_scope == "database" else self.run.id  # whose results count as cached
        self.last_seq = 0  # the highest completion seq folded into the strategy
        # genome hash -> keys waiting for an in-flight evaluation of the same genome (nothing trains twice)
        self.waiting: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        self.in_flight: dict[str, int] = {}  # genome hash -> its queued evaluation
        self.told: set[tuple[int, int, int]] = set()
        self.population = PopulationMirror(self.store, self.run.id, self.config_hash)
        self.final_recorded = False
        self.best: dict[str, Any] | None = None  # see Progress.best
        self.ranking = Ranking.of_config(self.cfg.model_dump(mode="json"))  # as `nas report` ranks
        self._best_rank: tuple[float, ...] | None = None  # self.ranking.key of self.best
        self.cache_hits = 0
        self.cache_sources: set[str] = set()  # other runs whose results were reused
        self.done_count = 0
        self.stop_curves = StopCurves(self.cfg.train, self.strategy)
        self.donors = Donors(self.cfg.train, self.strategy)  # train.transfer and the weights repository
        self.lease = DriverLease(self.store, self.run.id, self.owner)
        self._workers_counted = -1e9
        self._status_checked = 0.0
        self.inherited: set[int] = set()  # evaluations running when this driver took the run over
        # run-level stopping rules (nascli.run_stop): the limits, what they compare, the rule once it fired
        self.stop_limits = StopLimits.of_run_section(self.cfg.run)
        if self.stop_limits.max_evaluations is not None:
            self.budget = min(self.budget or self.stop_limits.max_evaluations, self.stop_limits.max_evaluations)
        self.stopped: StopReason | None = None
        self.best_primary: float | None = None
        self.clock_base = 0.0  # driving seconds recorded by earlier drivers of the run
        self._clock_started: float | None = None
        self._clock_recorded = 0.0

    # ---------------------------------------------------------------- the driver role (see lease.py)
    def acquire(self, force: bool = False, wait: bool = False) -> None:
        """Become the run's driver (DriverLease.acquire)."""
        self.lease.acquire(force=force, wait=wait)

    def renew(self) -> None:
        """Between steps: check the liveness token now and then, keep the lease while idle."""
        self.lease.renew()

    def check_cancelled(self) -> None:
        """Raise RunCancelled once `nas cancel` has marked the run (looked up every STATUS_CHECK_SECONDS)."""
        if time.monotonic() - self._status_checked < STATUS_CHECK_SECONDS:
            return
        self._status_checked = time.monotonic()
        if self.store.run_status(self.run.id) == "cancelled":
            raise RunCancelled(f"run {self.run.id} was cancelled",
                               hint=f"see what it found: `nas report {self.run.id}`")

    def _fenced(self, work: Callable[[], Any], *, what: str) -> Any:
        return self.lease.fenced(work, what=what)

    def set_status(self, status: str) -> None:
        """The run's status, unless another driver has taken the run over."""
        self.store.set_run_status(self.run.id, status, driver=self.owner)

    def fail(self, error: NascliError) -> None:
        mark_failed(self.store, self.run.id, error, driver=self.owner)

    def release(self) -> None:
        self.lease.release()

    # ---------------------------------------------------------------- replay (nas resume)
    def replay(self) -> None:
        """Rebuild the strategy from the recorded asks and results (see replay.py); then bring
        outstanding children (in flight when the previous driver died) back under this driver's control."""
        results = self.store.results(self.run.id)
        self.population.load(self.store.individuals(self.run.id), len(self.store.migrations(self.run.id)))
        self._walk_initial_individuals()  # from the stored proxy results: the same decisions
        asks = []
        for event in self.store.events(self.run.id):
            if event.kind == ASK_EVENT:
                asks.append(event.payload)
            else:
                self.final_recorded |= event.kind == FINAL_EVENT
                self._replay_stop_event(event)
        replay(self.strategy, distinct_asks(asks), results, seq_of=lambda finished: finished.seq, tell=self._tell,
               run=f"run {self.run.id}")
        self._record_population_changes()
        self.done_count = sum(1 for finished in results if self._is_child_result(finished))
        # Children issued but not finished: make sure each has its individual row and an evaluation.
        outstanding = self.strategy.outstanding
        if outstanding:
            self._issue(outstanding, recovering=True)

    def _is_child_result(self, finished: FinishedEvaluation) -> bool:
        """Not a migrant's copy (its source was told already), nor a proxy evaluation of an initial
        walk (no individual row, nascli.driver.proxy_init)."""
        return finished.individual_id is not None and finished.individual_id not in self.population.copy_ids

    def _walk_initial_individuals(self) -> bool:
        """Advance the proxy-scored initial walks (ga.init_proxy); True while they move."""
        if self.proxy_init is None or self.proxy_init.done:
            return False
        return self.proxy_init.step(self.store, self.run.id,
                                    lambda work: self._fenced(work, what="queue proxy evaluations"))

    def _tell(self, finished: FinishedEvaluation) -> None:
        if not self._is_child_result(finished):
            self.last_seq = finished.seq
            return
        individual_id = finished.individual_id
        key = self.population.key_of_individual.get(individual_id) if individual_id is not None else None
        if key is None:
            raise ReplayError(f"evaluation {finished.evaluation_id} belongs to no individual of run {self.run.id}")
        outcome = outcome_of(key, finished)
        self.strategy.tell(outcome)
        self.told.add(key)
        self.last_seq = finished.seq
        self.stop_curves.tell(key, finished.result)
        self.donors.tell(key, finished)
        # A child the stop rule ended (stopped_at_epoch in its metrics) has no rank: never the run's best.
        rank = self.ranking.key(outcome.metrics) if outcome.status == "done" else None
        primary = value(outcome.metrics, self.cfg.fitness.primary) if rank is not None else None
        if primary is not None and (self.best_primary is None or primary > self.best_primary):
            self.best_primary = primary
        if rank is not None and (self._best_rank is None or rank > self._best_rank):
            self.best, self._best_rank = {"key": list(key), "genome": finished.genome,
                                          "metrics": dict(outcome.metrics)}, rank

    # ---------------------------------------------------------------- live loop
    def step(self) -> bool:
        """Fold newly finished results, then propose. Returns True if anything happened.
        The step's writes (population mirror, ask event, children, cache hits, queue) are one
        transaction: one commit per step, and a crash leaves all or none of them."""
        self.renew()
        if self.proxy_init is not None and not self.proxy_init.done:
            return self._walk_initial_individuals()
        progressed = False
        for finished in self.store.results(self.run.id, after_id=self.last_seq):
            self._tell(finished)
            if not self._is_child_result(finished):
                continue
            self.done_count += 1
            self._satisfy_waiters(finished)
            progressed = True
        changes = self._population_changes() if progressed else None
        self._check_stop_rules()  # before asking: a run a rule has ended asks for nothing more
        n = children_allowed(self.stop_limits, len(self.population.individual_ids), self._ask_size())
        proposals = self.strategy.ask(n) if n != 0 and self.stopped is None else []
        ask = RecordedAsk(n, self.last_seq, [list(p.key) for p in proposals])
        plan = self._plan_issue(proposals) if proposals else None

        def writes() -> Any:
            self.population.step_copies = []  # a retried transaction starts over
            if changes is not None:
                self.population.write(changes)
            if plan is None:
                return None
            # Record the ask with its rows: a crash before this commit replays to the same proposals.
            self.store.append_event(self.run.id, ASK_EVENT, ask.payload())
            return self._write_issue(plan)

        if changes is None and plan is None:
            return False
        written = self._fenced(writes, what="record a driver step")
        if changes is not None:
            self._population_written(changes)
        if plan is not None:
            self._issued(plan, written)
        return True

    def _ask_size(self) -> int | None:
        if not self.strategy.asynchronous:
            return None  # synchronous: whatever is ready
        if self.count_external_workers:
            self._refresh_external_target()
        return max(0, self.in_flight_target - len(self.strategy.outstanding))

    def _refresh_external_target(self) -> None:
        """With only external workers, keep as many children in flight as workers were seen lately
        (at least ga.offspring_per_generation), so an asynchronous search uses every GPU."""
        if time.monotonic() - self._workers_counted < 5.0:
            return
        self._workers_counted = time.monotonic()
        live = live_worker_count(self.store, 3 * self.cfg.worker.heartbeat_seconds)
        self.in_flight_target = max(self.cfg.ga.offspring_per_generation, live)

    def _issue(self, proposals: list[Proposal], *, recovering: bool = False) -> None:
        """Record the children and get each an evaluation: from the cache, by waiting for an identical
        genome already in flight, or by queueing it. `recovering`: rows may exist already (resume)."""
        plan = self._plan_issue(proposals, recovering=recovering)
        self._issued(plan, self._fenced(lambda: self._write_issue(plan), what="record children"))

    def _plan_issue(self, proposals: list[Proposal], *, recovering: bool = False) -> IssuePlan:
        """Decide, without writing, what each child gets (reads: the cache, and rows left by a crash)."""
        rows = [NewIndividual(island=p.key[0], generation=p.key[1], slot=p.key[2], genome=str(p.genome),
                              genome_hash=canonical_hash(p.genome),
                              parents=self.population.parent_rows(p.key[0], p.parents),
                              operator=p.operator)
                for p in proposals]
        plan = IssuePlan(proposals, rows)
        queued: set[str] = set()  # genomes this plan queues, or found queued by the previous driver
        ids: list[int | None] = [None] * len(rows)
        if recovering:
            recorded = self.store.add_individuals(self.run.id, rows)  # idempotent: the rows a crash left, or new ones
            ids = list(recorded)
            plan.existing = self._evaluations_by_individual(recorded)
            queued |= {e.genome_hash for e in plan.existing.values() if e.status in ("pending", "running")}
        cached = ({} if self.cache_scope == "off" else
                  self.store.cached_results(self.cache_run, [row.genome_hash for row in rows], self.config_hash))
        for row, individual_id in zip(rows, ids):
            if individual_id in plan.existing:
                plan.actions.append(ALREADY_ISSUED)  # queued or finished before the crash
            else:
                plan.actions.append(choose_action(row, cached, queued, cache_scope=self.cache_scope,
                                                  stop_curves=self.stop_curves, in_flight=self.in_flight))
        return plan

    def _write_issue(self, plan: IssuePlan) -> tuple[list[int], list[int]]:
        """The store writes of a plan (inside a unit of work; may run twice after a transient error).
        Returns (individual ids, evaluation ids of the queued children)."""
        # parents resolved now: a parent that arrived as a migrant in this step is its copy here
        plan.rows = [dataclasses.replace(row, parents=self.population.parent_rows(p.key[0], p.parents))
                     for row, p in zip(plan.rows, plan.proposals)]
        ids = self.store.add_individuals(self.run.id, plan.rows)
        self.store.record_cached_results(self.run.id, [
            (individual_id, action.result) for individual_id, action in zip(ids, plan.actions)
            if isinstance(action, FromCache)])
        requests = []
        for row, proposal, individual_id, action in zip(plan.rows, plan.proposals, ids, plan.actions):
            if isinstance(action, Enqueue):
                seed = stream_seed(self.cfg.run.seed, "train", row.genome_hash) % (2**31)
                task = self.stop_curves.attach(task_for(self.cfg, row.genome, seed), row.island)
                task = self.donors.attach(task, proposal.key, proposal.parents)
                requests.append(EvaluationRequest(individual_id, task, genome_hash=row.genome_hash,
                                                  config_hash=self.config_hash))
        return ids, self.store.enqueue(self.run.id, requests) if requests else []

    def _issued(self, plan: IssuePlan, written: tuple[list[int], list[int]]) -> None:
        """Bring the driver's memory in line with a committed plan."""
        ids, evaluation_ids = written
        keys = {individual_id: proposal.key for individual_id, proposal in zip(ids, plan.proposals)}
        for evaluation in plan.existing.values():
            if evaluation.status in ("pending", "running"):
                self.in_flight[evaluation.genome_hash] = evaluation.id
                if evaluation.transfer_donor is not None and evaluation.individual_id in keys:
                    # its donor's weights stay until it finishes, as in the run the crash ended
                    self.donors.in_flight[keys[evaluation.individual_id]] = int(evaluation.transfer_donor)
            if evaluation.status == "running":
                self.inherited.add(evaluation.id)
        queued = iter(evaluation_ids)
        for proposal, row, individual_id, action in zip(plan.proposals, plan.rows, ids, plan.actions):
            self.population.record_child(proposal.key, individual_id)
            if isinstance(action, FromCache):
                self.cache_hits += 1
                if action.result.run_id != self.run.id:
                    self.cache_sources.add(action.result.run_id)
            elif isinstance(action, WaitForTwin):
                self.waiting[row.genome_hash].append(proposal.key)
            elif isinstance(action, Enqueue):
                self.in_flight[row.genome_hash] = next(queued)

    def _evaluations_by_individual(self, individual_ids: list[int]) -> dict[int, EvaluationInfo]:
        wanted = set(individual_ids)
        return {e.individual_id: e for e in self.store.evaluations(self.run.id) if e.individual_id in wanted}

    def _satisfy_waiters(self, finished: FinishedEvaluation) -> None:
        """A finished genome answers every waiting duplicate (recorded as cache hits, with their own seq)."""
        if self.in_flight.get(finished.genome_hash) == finished.evaluation_id:
            del self.in_flight[finished.genome_hash]
        waiting = self.waiting.pop(finished.genome_hash, [])
        if not waiting:
            return
        cached = self.store.cached_result(self.run.id, finished.genome_hash, self.config_hash)
        if cached is None:  # the original failed for a reason that is not the genome's: train them
            self._issue([p for p in self.strategy.outstanding if p.key in set(waiting)])
            return
        self.store.record_cached_results(self.run.id,
                                         [(self.population.individual_ids[key], cached) for key in waiting])
        self.cache_hits += len(waiting)

    def _record_population_changes(self) -> None:
        """Mirror the strategy's state into the store for reports: migrations (the table is their
        only record, so a crash can never write one twice) with each migrant's copy as an individual
        of its destination island, who is no longer alive, island generations."""
        changes = self._population_changes()
        self._fenced(lambda: self.population.write(changes), what="record population changes")
        self._population_written(changes)

    def _population_changes(self) -> PopulationChanges:
        return self.population.changes(self.strategy, self.told, evicted=self.donors.evictable())

    def _population_written(self, changes: PopulationChanges) -> None:
        self.population.written(changes)
        self.donors.evicted.update(changes.evicted)

    @property
    def finished(self) -> bool:
        return self.strategy.finished

    def drive(self, *, poll_seconds: float = 0.25, on_step: Callable[[], None] | None = None,
              workers_gone: Callable[[], bool] = lambda: False,
              workers_said: Callable[[], str | None] = lambda: None) -> None:
        """Loop until the budget is spent. Raises DriverLeaseLost if another driver takes over.
        Between steps it waits for a result: on PostgreSQL a notification of one of this run's
        results wakes it at once; polling with backoff stays underneath (and is all SQLite has)."""
        from nascli.store.notify import RESULT_CHANNEL, open_waiter

        idle = 0.02
        self._clock_started = time.monotonic()
        with open_waiter(self.store, RESULT_CHANNEL, self.run.id) as waiter:
            while not self.strategy.finished:
                self.check_cancelled()
                if self._run_stopped():
                    break
                if self.step():
                    idle = 0.02
                else:
                    if workers_gone():
                        said = workers_said()
                        raise NascliError(f"every local worker of run {self.run.id} exited before the run finished"
                                          + (f"; the last one said: {said}" if said else ""),
                                          hint=f"see the worker logs; continue with `nas resume {self.run.id}`")
                    if not waiter.wait(idle):
                        # notified: no need to poll often; the cap keeps lease renewal and views going
                        idle = min(max(poll_seconds, 1.0) if waiter.listening else poll_seconds, idle * 2)
                if on_step is not None:
                    on_step()
        self._record_clock(force=True)
        self._record_population_changes()

        if not self.final_recorded:
            self._fenced(lambda: self.store.append_event(self.run.id, FINAL_EVENT, self.strategy.snapshot()),
                         what="record the final populations")
            self.final_recorded = True

    def progress(self, workers_alive: int, started: float) -> Progress:
        return Progress(run=self.run, snapshot=self.strategy.snapshot(), queue=self.store.queue_counts(self.run.id),
                        evaluations_done=self.done_count, cache_hits=self.cache_hits, workers_alive=workers_alive,
                        started=started, finished=self.strategy.finished, best=self.best,
                        budget=self.budget,
                        cache_sources=sorted(self.cache_sources),
                        waiting_on=self._waiting_on(),
                        initial_walks=(self.proxy_init.status()
                                       if self.proxy_init and not self.proxy_init.done else None),
                        stop_reason=str(self.stopped) if self.stopped else None)

    # ---------------------------------------------------------------- run-level stopping rules
    def _replay_stop_event(self, event) -> None:
        if event.kind == CLOCK_EVENT:
            self.clock_base = max(self.clock_base, float(event.payload.get("seconds", 0.0)))
        elif event.kind == STOP_EVENT:
            self.stopped = StopReason.of_payload(event.payload)

    def driving_seconds(self) -> float:
        running = time.monotonic() - self._clock_started if self._clock_started is not None else 0.0
        return self.clock_base + running

    def _record_clock(self, force: bool = False) -> None:
        """Store the driving clock (only runs with run.max_hours keep one), at most every CLOCK_EVERY_SECONDS."""
        if self.stop_limits.max_hours is None or self._clock_started is None:
            return
        if not force and time.monotonic() - self._clock_recorded < CLOCK_EVERY_SECONDS:
            return
        seconds = self.driving_seconds()
        self._fenced(lambda: self.store.append_event(self.run.id, CLOCK_EVENT, {"seconds": seconds}),
                     what="record the run clock")
        self._clock_recorded = time.monotonic()

    def keep_clock(self) -> None:
        """Interrupted: store the driving clock, so the resumed run goes on from it (best effort:
        if the database is what failed, the run loses the time since the last recorded total)."""
        try:
            self._record_clock(force=True)
        except NascliError:
            pass

    def _check_stop_rules(self) -> None:
        """Record the first run-level rule that holds for the folded state (once)."""
        if self.stopped is not None or not self.stop_limits.active:
            return
        self._record_clock()
        reason = stop_reason(self.stop_limits, RunState(self.done_count, self.driving_seconds(), self.best_primary))
        if reason is not None:
            self._fenced(lambda: self.store.append_event(self.run.id, STOP_EVENT, reason.payload()),
                         what="record the stop rule")
            self.stopped = reason

    def _run_stopped(self) -> bool:
        """Whether a run-level rule (nascli.run_stop) ended the run and its last evaluations are in.
        When a rule first holds it is recorded; from then on no child is asked for, queued ones are
        cancelled, and the driver waits for the running ones and folds their results."""
        self._check_stop_rules()
        if self.stopped is None:
            return False
        self._fenced(lambda: self.store.cancel_pending(self.run.id), what="cancel the queued children")
        if self.store.queue_counts(self.run.id).get("running", 0):
            return False
        if self.proxy_init is None or self.proxy_init.done:
            self.step()  # fold the last results (asks for nothing now); an unfinished walk queues nothing more
        return True

    def _waiting_on(self) -> list[tuple[int, float]]:
        """The inherited evaluations still running, with the seconds their leases run (a dead
        driver's external workers may finish them, or the leases expire and others take them)."""
        if not self.inherited:
            return []
        now = self.store.db_now()
        waiting = []
        for evaluation_id in sorted(self.inherited):
            evaluation = self.store.evaluation(evaluation_id)
            if evaluation.status == "running" and evaluation.lease_expires_at is not None:
                waiting.append((evaluation_id, max(0.0, evaluation.lease_expires_at - now)))
            else:
                self.inherited.discard(evaluation_id)
        return waiting


def mark_failed(store: Store, run_id: str, error: NascliError, *, driver: str = "") -> None:
    """Mark the run failed, with the reason as a `failed` event, unless another driver than
    `driver` holds it now (it carries on). "" : a run no driver has taken yet."""

    def write() -> None:
        if store.set_run_status(run_id, "failed", driver=driver) is not None:
            store.append_event(run_id, FAILED_EVENT, {"reason": error.message, "hint": error.hint})

    try:
        store.atomically(write, what="mark the run failed")
    except StoreError:
        pass  # the database itself is what failed: the run stays as it was, and resumable
