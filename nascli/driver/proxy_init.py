"""The driver's side of Klos #9 proxy-scored initial walks (`ga.init_proxy`; the walk itself is pure,
nascli.ga.proxy_init).

Before the strategy's first ask, the driver walks every initial individual (ga.islands x
ga.population walks, walk i feeding the strategy's i-th `random_init`). Each walk's candidate is
trained as a proxy evaluation on the run's queue, like every other evaluation, so workers anywhere
do the work: an evaluation without an individual row, under the proxy training configuration
(train.mode = proxy with the ga.init_proxy_* sizes, so its cache key differs from the run's). A
genome is proxy-trained once per run; every walk that reaches it reads that result.

The walks' state is a fold over the run's finished proxy evaluations: a resumed driver builds the
walks afresh and tells them the stored scores, which reproduces every decision, then queues the
candidates that have no evaluation yet. Proxy scores come from this run only (not the
database-wide cache), so a resume never depends on other runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nascli.config import RunConfig, search_space_of, task_for, training_config_hash
from nascli.ga import operators
from nascli.ga.proxy_init import InitWalk, proxy_score
from nascli.ga.rng import rng_for, stream_seed
from nascli.ga.strategies import canonical_hash
from nascli.store import EvaluationRequest, Store

WALK_STREAM = "proxy-init"  # rng_for(run.seed, WALK_STREAM, walk index)
TRAIN_STREAM = "proxy-train"  # the proxy training's seed, per genome


def proxy_config(cfg: RunConfig) -> RunConfig:
    """The training configuration of the walks' proxy evaluations."""
    ga = cfg.ga
    train = cfg.train.model_copy(update={
        "mode": "proxy", "proxy_iterations": ga.init_proxy_iterations, "proxy_samples": ga.init_proxy_samples,
        "proxy_val_share": ga.init_proxy_val_share, "stop_rule": "off"})
    return cfg.model_copy(update={"train": train})


class ProxyInitialisation:
    """The walks of one run and the proxy evaluations they wait for."""

    def __init__(self, cfg: RunConfig, seed_genome: Any) -> None:
        space = search_space_of(cfg)
        probabilities = cfg.ga.operators.model_dump()

        def mutate(genome: Any, rng) -> Any:
            return operators.random_genome(genome, space, 1, rng, probabilities)

        self.cfg = proxy_config(cfg)
        self.config_hash = training_config_hash(self.cfg)
        self.primary = cfg.fitness.primary
        self.walks = [InitWalk(seed_genome, cfg.ga.init_mutations, rng_for(cfg.run.seed, WALK_STREAM, index), mutate)
                      for index in range(cfg.ga.islands * cfg.ga.population)]
        self.scores: dict[str, float | None] = {}  # genome hash -> proxy score (None: the training failed)
        self.queued: set[str] | None = None  # genome hashes with an unfinished proxy evaluation (None: not read yet)
        self.last_seq = 0  # the run's results read so far

    @property
    def done(self) -> bool:
        return all(walk.done for walk in self.walks)

    def genomes(self) -> Sequence[Any]:
        """The walks' final genomes, in walk order (only once every walk is done)."""
        if not self.done:
            raise RuntimeError("the initial walks are not finished; the strategy asked too early")
        return [walk.current for walk in self.walks]

    def step(self, store: Store, run_id: str, fenced: Callable[[Callable[[], Any]], Any]) -> bool:
        """Read new proxy results, advance the walks as far as they go, queue the candidates nobody
        has queued (through `fenced`, the driver's lease-checked transaction). True if anything moved."""
        if self.queued is None:
            self.queued = {e.genome_hash for e in store.evaluations(run_id)
                           if e.individual_id is None and e.config_hash == self.config_hash
                           and e.status in ("pending", "running")}
        progressed = False
        for finished in store.results(run_id, after_id=self.last_seq):
            self.last_seq = finished.seq
            if finished.individual_id is not None or finished.config_hash != self.config_hash:
                continue
            result = finished.result
            metrics = {"val_accuracy": result.val_accuracy, "val_loss": result.val_loss}
            self.scores.setdefault(finished.genome_hash, proxy_score(result.status, metrics, self.primary))
            self.queued.discard(finished.genome_hash)
            progressed = True
        wanted: dict[str, str] = {}
        for walk in self.walks:
            while not walk.done:
                genome_hash = canonical_hash(walk.candidate)
                if genome_hash in self.scores:
                    walk.tell(self.scores[genome_hash])
                    progressed = True
                    continue
                if genome_hash not in self.queued:
                    wanted[genome_hash] = str(walk.candidate)
                break
        if wanted:
            requests = [EvaluationRequest(None, task_for(self.cfg, genome, self._seed(genome_hash)),
                                          genome_hash=genome_hash, config_hash=self.config_hash)
                        for genome_hash, genome in wanted.items()]
            fenced(lambda: store.enqueue(run_id, requests))
            self.queued.update(wanted)
            progressed = True
        return progressed

    def _seed(self, genome_hash: str) -> int:
        return stream_seed(self.cfg.run.seed, TRAIN_STREAM, genome_hash) % (2**31)

    def status(self) -> str:
        """One line for the live view while the walks run."""
        finished = sum(walk.done for walk in self.walks)
        return (f"walking the initial individuals (ga.init_proxy, Klos #9): {finished} of {len(self.walks)} walks "
                f"done, {len(self.scores)} proxy trainings finished")
