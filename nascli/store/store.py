"""The Store: one Database and the repositories over it, behind the method names callers use.

    store.queue        QueueRepository     (queue.py)       enqueue, claim, heartbeat, complete, release, reap
    store.cache        GenotypeCache       (cache.py)       cached results and their copies into a run
    store.runs         RunRepository       (runs.py)        runs and the search driver's lease
    store.management   RunManagement       (manage.py)      cancel and delete a run
    store.population   PopulationRepository (population.py) individuals, island generations, migrations
    store.event_log    EventLog            (events.py)      the run's ordered event log
    store.worker_registry WorkerRegistry   (workers.py)     registered workers
    store.weight_repository WeightsRepository (weights.py)  trained weights for transfer and export
    store.db           Database            (database.py)    engine, transactions, clock, the executor

Each `store.<method>` below is the repository's method itself (no wrapper): `store.claim is`
`store.queue.claim`'s bound method. Every method is one transaction; `store.atomically` makes
several one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from nascli.store import schema
from nascli.store.cache import GenotypeCache
from nascli.store.database import Database
from nascli.store.engine import DEFAULT_RETRY_SECONDS, connect_error, create_engine, display_url, parse_url
from nascli.store.events import EventLog
from nascli.store.manage import RunManagement
from nascli.store.population import PopulationRepository
from nascli.store.queue import QueueRepository
from nascli.store.records import QueueLimits
from nascli.store.runs import RunRepository
from nascli.store.weights import WeightsRepository
from nascli.store.workers import WorkerRegistry

T = TypeVar("T")


def open_store(url: str, *, create: bool = False, read_only: bool = False, retry_seconds: float = DEFAULT_RETRY_SECONDS,
               limits: QueueLimits | None = None, clock: Callable[[], float] | None = None) -> Store:
    """Connect to `url` and check its schema.

    `create=True` (what `nas init` does) creates a missing SQLite file and the schema; otherwise a
    missing file or schema is a StoreError and nothing is written. Raises StoreError with one
    clear line for an unsupported or malformed URL, an unreachable server, a wrong password, a
    file that is not a database, or a schema written by another nascli version.
    `read_only=True` (report, export): the database is opened so that nothing can change it.
    `retry_seconds`: how long transient errors (server restart) are retried before giving up.
    `clock`: tests only — replaces the database clock with a Python callable (epoch seconds).
    """
    parsed = parse_url(url)
    engine = create_engine(parsed, create=create, read_only=read_only)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except DBAPIError as error:
        engine.dispose()
        raise connect_error(error, parsed) from None
    store = Store(engine, display_url(parsed), retry_seconds=retry_seconds, limits=limits, clock=clock)
    try:
        if create:
            store.created_schema = store.init_schema()
        else:
            store.check_schema()
    except BaseException:
        store.close()
        raise
    return store


class Store:
    """One database and its repositories. Thread-safe (a pool of connections); after a fork, open a new Store."""

    def __init__(self, engine: Engine, url_display: str, *, retry_seconds: float = DEFAULT_RETRY_SECONDS,
                 limits: QueueLimits | None = None, clock: Callable[[], float] | None = None) -> None:
        db = self.db = Database(engine, url_display, retry_seconds=retry_seconds, clock=clock)
        self.engine, self.url_display, self.backend = engine, db.url_display, db.backend
        self.created_schema = False  # set by open_store(create=True) when it created the tables
        runs = self.runs = RunRepository(db)
        weight_repository = self.weight_repository = WeightsRepository(db)
        queue = self.queue = QueueRepository(db, runs, limits or QueueLimits(), weight_repository)
        cache = self.cache = GenotypeCache(db, queue)
        management = self.management = RunManagement(db, runs)
        population = self.population = PopulationRepository(db, runs)
        event_log = self.event_log = EventLog(db, runs)
        worker_registry = self.worker_registry = WorkerRegistry(db)

        # transactions and the clock
        self.atomically = db.atomically
        # runs and the search driver's lease
        self.create_run, self.get_run, self.list_runs = runs.create_run, runs.get_run, runs.list_runs
        self.set_run_status, self.run_status = runs.set_run_status, runs.run_status
        self.unfinished_run_named = runs.unfinished_run_named
        self.acquire_driver_lease, self.renew_driver_lease = runs.acquire_driver_lease, runs.renew_driver_lease
        self.release_driver_lease = runs.release_driver_lease
        self.cancel_run, self.delete_run = management.cancel_run, management.delete_run
        # the queue
        self.enqueue, self.prepare_worker, self.claim = queue.enqueue, queue.prepare_worker, queue.claim
        self.complete_and_claim, self.heartbeat = queue.complete_and_claim, queue.heartbeat
        self.complete = queue.complete
        self.fail, self.release = queue.fail, queue.release
        self.reap, self.cancel_pending = queue.reap, queue.cancel_pending
        self.results, self.queue_counts = queue.results, queue.queue_counts
        self.evaluation, self.evaluations = queue.evaluation, queue.evaluations
        # the genotype cache
        self.cached_result, self.cached_results = cache.cached_result, cache.cached_results
        self.record_cached_result, self.record_cached_results = cache.record_cached_result, cache.record_cached_results
        # the population
        self.add_individuals, self.individuals = population.add_individuals, population.individuals
        self.mark_replaced, self.set_island_generations = population.mark_replaced, population.set_island_generations
        self.islands, self.record_migration = population.islands, population.record_migration
        self.migrations = population.migrations
        # events and workers
        self.append_event, self.events = event_log.append_event, event_log.events
        self.register_worker, self.worker_seen = worker_registry.register_worker, worker_registry.worker_seen
        self.workers = worker_registry.workers
        # the weights repository (the queue writes a result's weights with its finish)
        self.weights, self.stored_weight_ids = weight_repository.weights, weight_repository.stored_weight_ids
        self.evict_weights, self.repository_size = weight_repository.evict_weights, weight_repository.repository_size

    @property
    def limits(self) -> QueueLimits:
        """The retry budget of rows queued without a run's own [worker] settings (and of cache copies)."""
        return self.queue.limits

    @limits.setter
    def limits(self, limits: QueueLimits) -> None:
        self.queue.limits = limits

    def set_island_generation(self, run_id: str, island: int, generation: int) -> None:
        """Record how far an island has got (for migration barriers and progress)."""
        self.population.set_island_generations(run_id, {island: generation})

    def db_now(self) -> float:
        """The database clock, epoch seconds: compare lease expiry times against this."""
        return self.db.read(self.db.now_value, what="read clock")

    def init_schema(self) -> bool:
        """Create the tables and the version row if absent (idempotent); True if it created them."""
        return schema.init_schema(self.db)

    def check_schema(self) -> int:
        """The schema version, after checking it is this nascli's. StoreError if absent or other."""
        return schema.check_schema(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
