"""The typed run configuration: one pydantic model per TOML table, unknown keys rejected.

Pure (no torch, no I/O). Defaults follow Klos et al. Table 5 (seed 000, Appendix A) unless a key
is ours; each field's description is what `nascli.toml.example` and docs/configuration.md show.
Strict types: a TOML string is not an integer, so `islands = "5"` is an error, not a guess.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from nascli.metrics import COST_METRICS, PRIMARY_METRICS

STRATEGIES = ("island-ga", "mu-plus-lambda", "regularized-evolution", "nsga2", "linas", "random")
TASK_KINDS = ("classification", "denoise", "reconstruct", "synthetic")
DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "stl10", "synthetic")
LAYER_TYPES = ("C", "P", "R", "D", "I")  # conv, max-pool, residual, dense, inception
INCEPTION_VARIANTS = (0, 1, 2, 3)
OBJECTIVES = PRIMARY_METRICS + COST_METRICS
OPERATOR_SUM_TOLERANCE = 1e-9
# ga.replacement each strategy implements (the others select survivors their own way).
Replacement = Literal["worst-if-better", "aging"]
REPLACEMENTS_BY_STRATEGY: dict[str, tuple[Replacement, ...]] = {"island-ga": ("worst-if-better", "aging"),
                                                                "regularized-evolution": ("aging",)}

# Fields whose "no value" cannot be written in TOML (it has no null): the string "none" means None.
_NONE_WORDS = ("none", "null")


def rule_error(key: str, message: str) -> PydanticCustomError:
    """A cross-field violation; `key` is the dotted key to blame (it names the file it came from)."""
    return PydanticCustomError("config_rule", "{message}", {"key": key, "message": message})


def _none_word_to_none(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
        return None
    return value


def _example(value: Any) -> dict[str, Any]:
    """An example value for a key whose default is none (shown commented out in the example file)."""
    return {"example": value}


# The largest integer every backend's INTEGER column holds (PostgreSQL's is 32-bit; run.seed is one).
DB_INT_MAX = 2**31 - 1
# Upper bounds for sizes: far beyond any real search, low enough that a typo fails at once instead
# of allocating for hours (ga.population = 1000000000).
MAX_ISLANDS = 10_000
MAX_POPULATION = 1_000_000
MAX_GENERATIONS = 100_000_000
MAX_MUTATIONS = 1_000_000
MAX_LAYERS = 1_000
MAX_EPOCHS = 1_000_000


class Section(BaseModel):
    # allow_inf_nan=False: inf and nan are refused for every float (a lease of inf never expires)
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _integers_fit_the_database(self):
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > DB_INT_MAX:
                raise rule_error(name, f"{value} is too large: integers are at most {DB_INT_MAX} "
                                 "(what the database stores)")
        return self


def _positive_unique_sorted(values: list[int], what: str) -> list[int]:
    if not values:
        raise ValueError(f"{what} must not be empty")
    if any(v <= 0 for v in values):
        raise ValueError(f"every entry of {what} must be a positive integer")
    return sorted(set(values))  # canonical order: equal spaces hash equally


class RunSection(Section):
    name: str | None = Field(None, description="Run name shown in reports (none: the run id).",
                             json_schema_extra=_example("my-first-run"))
    seed: int = Field(0, ge=0, description="Base seed: every random choice derives from "
                      "(seed, island, generation, purpose).")
    strategy: Literal[STRATEGIES] = Field("island-ga", description="Search strategy.")
    description: str = Field("", description="One line saying what this configuration is for "
                             "(shown by --list-presets).")
    max_evaluations: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Stop once this many evaluations have finished, besides the "
        "strategy's own budget (none: no limit). Resumed runs count the stored ones.",
        json_schema_extra=_example(500))
    max_hours: float | None = Field(
        None, gt=0, description="Stop once drivers have driven the run this many hours (time interrupted does "
        "not count; resumed runs go on from the stored clock). Running evaluations finish first. None: no limit.",
        json_schema_extra=_example(12.0))
    target: float | None = Field(
        None, description="Stop once a result's fitness.primary reaches this (e.g. 0.99 val_accuracy). "
        "None: no target.",
        json_schema_extra=_example(0.99))

    accept_none_word = field_validator("max_evaluations", "max_hours", "target", mode="before")(_none_word_to_none)


class TaskSection(Section):
    kind: Literal[TASK_KINDS] = Field(
        "classification",
        description="classification; denoise / reconstruct (autoencoders, modules genomes); synthetic (no training).")
    dataset: Literal[DATASETS] = Field("cifar10",
                                       description="Dataset; its input shape and class count follow from it.")
    data_dir: str | None = Field(
        None, description="Where datasets are stored (none: per-user cache, $XDG_CACHE_HOME/nascli/data, "
        "resolved on the host that trains).", json_schema_extra=_example("~/datasets"))
    val_fraction: float = Field(1 / 11, gt=0, lt=1, description="Held-out validation share of the training data "
                                "(Klos train/validation 10/1 = 1/11). Selection never sees the test set.")
    genome_family: Literal["layers", "modules"] = Field(
        "layers", description="layers: Klos layer strings; modules: Hajewski repeated module + reductions (an "
        "autoencoder for denoise/reconstruct, a classifier with a linear head for classification).")
    noise_sigma: float = Field(math.sqrt(1 / 3), ge=0, description="denoise: std of the added Gaussian noise "
                               "(Hajewski et al. sigma^2 = 1/3).")
    reduction_modules: Literal[2, 3] = Field(2, description="modules genomes: reduction modules (each halves "
                                             "height and width; the classifier repeats the module after each).")
    synthetic_seconds: float = Field(0.0, ge=0, description="synthetic: seconds each evaluation sleeps "
                                     "(to exercise the machinery).")
    synthetic_fail_genomes: list[str] = Field(
        default_factory=list, description="synthetic: a genome containing any of these substrings fails (crash).")
    synthetic_oom_genomes: list[str] = Field(
        default_factory=list, description="synthetic: a genome containing any of these substrings fails (oom).")
    synthetic_shape: list[int] = Field(default_factory=lambda: [1, 8, 8],
                                       description="dataset synthetic: input [channels, height, width].")
    synthetic_classes: int = Field(10, ge=2, description="dataset synthetic: number of classes.")

    accept_none_word = field_validator("data_dir", mode="before")(_none_word_to_none)

    @field_validator("synthetic_shape")
    @classmethod
    def _shape(cls, value: list[int]) -> list[int]:
        if len(value) != 3 or any(v <= 0 for v in value):
            raise ValueError("synthetic_shape must be three positive integers [channels, height, width]")
        return value


class SearchSpaceSection(Section):
    layers: list[Literal[LAYER_TYPES]] = Field(
        default_factory=lambda: list(LAYER_TYPES),
        description="Hidden layer types: C conv, P max-pool, R residual, D dense, I inception.")
    inception_variants: list[Literal[INCEPTION_VARIANTS]] = Field(
        default_factory=lambda: [1, 2, 3],
        description="Inception factorisation variants (Klos Sec. 3.1: 1 smaller kernels, 2 factorised, "
        "3 expanded outputs; 0 none). [1] is Klos 'IF1'.")
    kernels: list[int] = Field(default_factory=lambda: [1, 3, 5, 7], description="Kernel sizes (square).")
    strides: list[int] = Field(default_factory=lambda: [1, 2], description="Strides.")
    filters: list[int] = Field(default_factory=lambda: [16, 32, 64, 128, 256], description="Feature-map counts.")
    dense_units: list[int] = Field(default_factory=lambda: [64, 128, 256, 512],
                                   description="Hidden dense layer widths.")
    max_layers: int = Field(20, ge=1, le=MAX_LAYERS, description="Most hidden layers a genome may have.")
    max_params: int = Field(10_000_000, ge=1, description="Most trainable parameters a genome may have.")
    module_dropout: bool = Field(True, description="modules genomes: 2D dropout (p = 0.5) is a layer choice besides "
                                 "the convolutions (Hajewski seed 002).")

    @field_validator("layers", "inception_variants")
    @classmethod
    def _canonical_choice(cls, value: list, info) -> list:
        if not value and info.field_name == "layers":
            raise ValueError("layers must name at least one layer type")
        order = LAYER_TYPES if info.field_name == "layers" else INCEPTION_VARIANTS
        return [item for item in order if item in value]

    @field_validator("kernels", "strides", "filters", "dense_units")
    @classmethod
    def _positive(cls, value: list[int], info) -> list[int]:
        return _positive_unique_sorted(value, info.field_name)

    @model_validator(mode="after")
    def _inception_needs_variants(self) -> SearchSpaceSection:
        if "I" in self.layers and not self.inception_variants:
            raise rule_error("inception_variants", "must name at least one variant (0-3) when layers include I")
        return self


class OperatorsSection(Section):
    insert: float = Field(0.2, ge=0, le=1, description="Probability of inserting a layer.")
    switch: float = Field(0.1, ge=0, le=1, description="Probability of switching two layers.")
    delete: float = Field(0.2, ge=0, le=1, description="Probability of deleting a layer.")
    adjust: float = Field(0.4, ge=0, le=1, description="Probability of adjusting one layer's parameters.")
    crossover: float = Field(0.1, ge=0, le=1, description="Probability of single-point crossover.")

    @model_validator(mode="after")
    def _sums_to_one(self) -> OperatorsSection:
        total = self.insert + self.switch + self.delete + self.adjust + self.crossover
        if abs(total - 1.0) > OPERATOR_SUM_TOLERANCE:
            raise rule_error("crossover", f"operator probabilities must sum to 1, they sum to {total:.6g}")
        return self

    def as_dict(self) -> dict[str, float]:
        return self.model_dump()


class GaSection(Section):
    islands: int = Field(5, ge=1, le=MAX_ISLANDS, description="Sub-populations (islands).")
    population: int = Field(20, ge=1, le=MAX_POPULATION, description="Individuals per island (mu for mu-plus-lambda; "
                            "population for regularized evolution).")
    generations: int = Field(1000, ge=0, le=MAX_GENERATIONS,
                             description="Generations per island (termination criterion).")
    init_mutations: int = Field(1000, ge=0, le=MAX_MUTATIONS, description="Random mutations applied to the seed genome "
                                "for each initial individual.")
    init_proxy: bool = Field(False, description="Klos config #9 seed architectures: keep each of the "
                             "init_mutations mutations only if a short proxy training (init_proxy_*) scores the "
                             "mutated network at least as well as the one before; the proxy trainings run on workers. "
                             "island-ga with layer genomes.")
    init_proxy_iterations: int = Field(5, ge=1, description="init_proxy: optimizer steps of each proxy training.")
    init_proxy_samples: int = Field(256, ge=1, description="init_proxy: training samples of each proxy training.")
    init_proxy_val_share: float = Field(0.1, gt=0, le=1, description="init_proxy: validation samples, as a share "
                                        "of the training split's size (at most the whole validation split).")
    offspring_per_generation: int = Field(1, ge=1, le=MAX_POPULATION, description="Children per island per generation "
                                          "(Klos: 1; lambda for mu-plus-lambda).")
    min_parent_age: int = Field(1, ge=1, description="Generations an individual must have lived before it may "
                                "be a parent (Klos config #4: 5).")
    selection: Literal["roulette", "tournament"] = Field("roulette", description="Parent selection.")
    replacement: Replacement | None = Field(
        None,
        description="worst-if-better: a child replaces the worst if it is better (Klos); aging: a child "
        "always enters and the oldest leaves (regularized evolution). island-ga takes both; "
        "regularized-evolution is aging; none: the strategy's own rule.",
        json_schema_extra=_example("aging"))
    tournament_size: int = Field(5, ge=2, description="Sample size for tournament selection.")
    seed_genome: str | None = Field(
        None, description="Genome to start from instead of the minimal input+output one "
        "(Klos config #9 'seed architectures').", json_schema_extra=_example("In_8_8_1:C_3-3-1-1-16:D_10"))
    operators: OperatorsSection = Field(default_factory=OperatorsSection)

    accept_none_word = field_validator("seed_genome", "replacement", mode="before")(_none_word_to_none)


class CacheSection(Section):
    scope: Literal["database", "run", "off"] = Field(
        "database", description="Whose results a child with an identical genome (and the same training "
        "configuration) reuses instead of training: database: any run's; run: only this run's (independent "
        "seed replicates); off: none, every child trains.")


class MigrationSection(Section):
    period: int = Field(20, ge=1, description="Migrate every this many generations.")
    candidates: float = Field(0.30, gt=0, le=1, description="Share of the best individuals pre-selected as migrants.")
    fraction: float = Field(0.05, gt=0, le=1, description="Migrants per migration, as a share of the population "
                            "(at least one).")
    datasets: int = Field(1, ge=1, description="N_d of Klos Alg. 1: islands on the same dataset exchange migrants.")


class FitnessSection(Section):
    primary: Literal[PRIMARY_METRICS] = Field("val_accuracy", description="Primary fitness.")
    threshold: float | None = Field(
        None, description="Once the worst individual of an island exceeds this primary fitness, fewer "
        "parameters (the secondary metric) count instead (Klos: 0.996 MNIST, 0.94 Fashion-MNIST, 0.90 CIFAR-10). "
        "none: never switch.", json_schema_extra=_example(0.9))
    secondary: Literal[COST_METRICS] = Field("params", description="Secondary fitness "
                                                                "(smaller is better).")

    accept_none_word = field_validator("threshold", mode="before")(_none_word_to_none)


class TrainSection(Section):
    epochs: int = Field(100, ge=1, le=MAX_EPOCHS, description="Most training epochs.")
    patience: int = Field(6, ge=1, description="Early stopping: epochs without validation improvement.")
    batch_size: int = Field(256, ge=1, description="Batch size.")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="Optimizer.")
    lr: float = Field(1e-3, gt=0, description="Learning rate.")
    weight_decay: float = Field(1e-5, ge=0, description="Weight decay.")
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd: momentum.")
    loss: Literal["mse", "cross_entropy"] = Field("mse", description="Loss (Klos: mean squared error on one-hot).")
    activation: Literal["relu", "leaky_relu", "elu", "gelu", "tanh"] = Field("leaky_relu", description="Activation.")
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout before dense layers.")
    bn_momentum: float = Field(0.01, gt=0, le=1, description="BatchNorm momentum, PyTorch convention "
                               "(Keras/Klos 0.99 == 0.01 here).")
    kfolds: int = Field(1, ge=1, description="k-fold cross-validation folds (1: off; Klos config #5: 5).")
    amp: Literal["auto", "bf16", "fp16", "off"] = Field(
        "auto", description="Mixed precision. auto: on CUDA bf16 autocast where the GPU supports it (no loss "
        "scaling), else fp16 with a GradScaler; fp32 on the CPU. bf16 / fp16: that autocast on any device "
        "(fp16 with a GradScaler). off: fp32 everywhere (the papers' setting). true/false read as auto/off.")
    mode: Literal["full", "proxy"] = Field("full", description="full training, or a cheap proxy "
                                           "(few samples and iterations).")
    proxy_samples: int = Field(1024, ge=1, description="proxy: training samples used.")
    proxy_iterations: int = Field(50, ge=1, description="proxy: optimizer steps.")
    proxy_val_share: float | None = Field(
        None, gt=0, le=1, description="proxy: validation samples as a share of the training split's size (at most "
        "the whole validation split); none: the whole validation split.", json_schema_extra=_example(0.1))
    keep_checkpoints: bool = Field(False, description="Keep every evaluated network's weights in artifact_dir.")
    artifact_dir: str | None = Field(None, description="Where checkpoints go (none: beside the data, per run).",
                                     json_schema_extra=_example("artifacts"))
    measure_latency: bool = Field(False, description="Measure inference latency (ms per batch of one).")
    threads: int = Field(0, ge=0, description="CPU threads per worker (0: torch's default).")
    stop_rule: Literal["off", "below-worst", "median"] = Field(
        "off", description="Stop children that cannot win. below-worst (island-ga, mu-plus-lambda): when the child's "
        "validation accuracy is more than stop_margin below the destination island's worst member at the same "
        "epoch; median: below the median of the finished evaluations at that epoch. A stopped child is done, "
        "with extra.stopped_at_epoch, and never the run's best. off: train every child to the end (the papers).")
    stop_margin: float = Field(0.0, ge=0, le=1, description="stop_rule: how far below the comparison (validation "
                               "accuracy) a child may be before it stops.")
    stop_min_epochs: int = Field(1, ge=1, description="stop_rule: the first epoch at which a child may be stopped.")
    max_seconds: float | None = Field(
        None, gt=0, description="Wall-clock limit of one evaluation: past it the attempt fails as timeout, and a "
        "worker whose training does not stop within half a lease exits, so its task goes to another worker when the "
        "lease expires. none: from the task's budget, 600 s + 600 s per epoch (train.epochs; 1 in proxy mode), times "
        "train.kfolds; synthetic tasks 60 s + 4 x task.synthetic_seconds.", json_schema_extra=_example(7200))

    transfer: Literal["off", "parent", "repository"] = Field(
        "off", description="Weight transfer (seed 004): a child starts from a trained donor's weights for the longest "
        "common prefix of layers with identical shapes; the rest is freshly initialised. parent: its first parent; "
        "repository: the living member of the child's island whose genome shares the longest prefix with the "
        "child's. off: every child "
        "trains from scratch (the papers).")
    transfer_epochs: int | None = Field(None, ge=1, le=MAX_EPOCHS, description="transfer: most training epochs of a "
                                        "child that got a donor's weights (none: train.epochs).",
                                        json_schema_extra=_example(3))
    freeze_epochs: int = Field(0, ge=0, description="transfer: epochs the transferred layers stay frozen before "
                               "they are fine-tuned with the rest (0: never frozen).")
    repository_top_k: int = Field(5, ge=0, description="Weights repository: besides living population members, the "
                                  "run's best K evaluations keep their weights as donors; the rest are evicted.")
    store_weights: bool = Field(False, description="Store every finished evaluation's weights in the database (the "
                                "weights repository; on whenever transfer is on), so `nas export` needs no retraining.")

    accept_none_word = field_validator("artifact_dir", "proxy_val_share", "max_seconds", "transfer_epochs",
                                       mode="before")(_none_word_to_none)

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_from_bool(cls, value: Any) -> Any:
        """Stored runs and old files wrote `amp = true/false`."""
        if isinstance(value, bool) or value in ("true", "false"):
            return "auto" if value in (True, "true") else "off"
        return value


class WorkerSection(Section):
    lease_seconds: float = Field(120.0, gt=0, description="A claim expires this long after the last heartbeat.")
    heartbeat_seconds: float = Field(15.0, gt=0, description="How often a worker extends its lease "
                                     "(must be below lease_seconds).")
    max_attempts: int = Field(3, ge=1, description="Claims of one evaluation before it is failed for good.")
    max_lease_expiries: int = Field(5, ge=1, description="Expired leases of one evaluation before it is failed "
                                    "as timeout.")
    poll_seconds: float = Field(1.0, gt=0, description="Longest wait of an idle worker bound to this run "
                                "(`nas worker --run`, the local workers of `nas run`) between queue polls.")


class StoreSection(Section):
    url: str | None = Field(
        None, description="Database URL (none: NAS_DB_URL, else sqlite:///nas.db). Prefer NAS_DB_URL for "
        "passwords.", json_schema_extra=_example("postgresql+psycopg://nas@db.example/nas"))

    accept_none_word = field_validator("url", mode="before")(_none_word_to_none)


class Nsga2Section(Section):
    objectives: list[Literal[OBJECTIVES]] | None = Field(
        None, description="Objectives for nsga2 / linas (none: [fitness.primary, fitness.secondary]); "
        "accuracy-like ones are maximised, the rest minimised.",
        json_schema_extra=_example(["val_accuracy", "latency_ms"]))

    accept_none_word = field_validator("objectives", mode="before")(_none_word_to_none)

    @field_validator("objectives")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("objectives must be distinct")
        return value


class LinasSection(Section):
    predictor: Literal["ridge", "svr"] = Field("ridge", description="Objective predictor (Cummings et al.).")
    predictor_generations: int = Field(200, ge=1, description="Predictor-only NSGA-II generations per iteration.")
    evaluations_per_iteration: int = Field(50, ge=1, description="Real evaluations per LINAS iteration.")
    iterations: int = Field(10, ge=1, description="LINAS iterations.")


SECTIONS: dict[str, type[Section]] = {
    "run": RunSection, "task": TaskSection, "search_space": SearchSpaceSection, "ga": GaSection, "cache": CacheSection,
    "migration": MigrationSection, "fitness": FitnessSection, "train": TrainSection, "worker": WorkerSection,
    "store": StoreSection, "nsga2": Nsga2Section, "linas": LinasSection,
}


class RunConfig(BaseModel):
    """A whole run's configuration. `model_dump(mode='json')` is what a run row stores."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=False)

    run: RunSection = Field(default_factory=RunSection)
    task: TaskSection = Field(default_factory=TaskSection)
    search_space: SearchSpaceSection = Field(default_factory=SearchSpaceSection)
    ga: GaSection = Field(default_factory=GaSection)
    cache: CacheSection = Field(default_factory=CacheSection)
    migration: MigrationSection = Field(default_factory=MigrationSection)
    fitness: FitnessSection = Field(default_factory=FitnessSection)
    train: TrainSection = Field(default_factory=TrainSection)
    worker: WorkerSection = Field(default_factory=WorkerSection)
    store: StoreSection = Field(default_factory=StoreSection)
    nsga2: Nsga2Section = Field(default_factory=Nsga2Section)
    linas: LinasSection = Field(default_factory=LinasSection)

    @model_validator(mode="before")
    @classmethod
    def _cache_scope_of_older_runs(cls, data: Any) -> Any:
        # runs stored with ga.cache_across_runs (true/false) resume with the cache scope it meant
        ga = data.get("ga") if isinstance(data, dict) else None
        if isinstance(ga, dict) and "cache_across_runs" in ga:
            ga = dict(ga)
            across = ga.pop("cache_across_runs")
            data = {**data, "ga": ga, "cache": {"scope": "database" if across else "run", **data.get("cache", {})}}
        return data

    @model_validator(mode="after")
    def _cross_field_rules(self) -> RunConfig:
        for key, message in cross_field_problems(self):
            raise rule_error(key, message)
        if self.nsga2.objectives is None:  # fill the documented default so a stored run is explicit
            self.nsga2.objectives = [self.fitness.primary, self.fitness.secondary]
        if self.ga.replacement is None:  # the strategy's own rule, explicit in the stored run
            supported = REPLACEMENTS_BY_STRATEGY.get(self.run.strategy)
            if supported:
                self.ga.replacement = supported[0]
        return self


def cross_field_problems(cfg: RunConfig) -> list[tuple[str, str]]:
    """Rules that involve more than one key, as (dotted key to blame, message); first one wins."""
    problems: list[tuple[str, str]] = []
    task, train, fitness, ga = cfg.task, cfg.train, cfg.fitness, cfg.ga
    if cfg.worker.heartbeat_seconds >= cfg.worker.lease_seconds:
        problems.append(("worker.heartbeat_seconds", f"must be below worker.lease_seconds "
                         f"({cfg.worker.lease_seconds:g}), or leases expire between heartbeats"))
    if fitness.threshold is not None:
        if fitness.primary == "val_accuracy" and not 0 <= fitness.threshold <= 1:
            problems.append(("fitness.threshold", "must be in [0, 1] when fitness.primary is val_accuracy"))
        if fitness.primary == "inverse_val_loss" and fitness.threshold <= 0:
            problems.append(("fitness.threshold", "must be > 0 when fitness.primary is inverse_val_loss"))
    if cfg.run.target is not None:
        if fitness.primary == "val_accuracy" and not 0 <= cfg.run.target <= 1:
            problems.append(("run.target", "must be in [0, 1] when fitness.primary is val_accuracy"))
        if fitness.primary == "inverse_val_loss" and cfg.run.target <= 0:
            problems.append(("run.target", "must be > 0 when fitness.primary is inverse_val_loss"))
    if task.kind in ("denoise", "reconstruct"):
        if task.genome_family != "modules":
            problems.append(("task.genome_family", f"must be modules for task.kind {task.kind} "
                             "(autoencoders are built from Hajewski modules)"))
        if train.loss != "mse":
            problems.append(("train.loss", f"must be mse for task.kind {task.kind}"))
        if fitness.primary != "inverse_val_loss":
            problems.append(("fitness.primary", f"must be inverse_val_loss for task.kind {task.kind} "
                             "(there is no accuracy)"))
    if task.genome_family == "modules" and task.kind != "synthetic":
        _, height, width, _ = input_shape(task)
        factor = 2 ** task.reduction_modules
        if height % factor or width % factor:
            problems.append(("task.reduction_modules", f"{task.reduction_modules} reductions need height and width "
                             f"divisible by {factor}; {task.dataset} is {height}x{width}"))
    if ga.seed_genome is not None:
        problem = _seed_genome_problem(ga.seed_genome, task.genome_family)
        if problem:
            problems.append(("ga.seed_genome", problem))
    if train.loss == "cross_entropy" and task.kind not in ("classification", "synthetic"):
        problems.append(("train.loss", "cross_entropy needs task.kind classification"))
    supported = REPLACEMENTS_BY_STRATEGY.get(cfg.run.strategy, ())
    if ga.replacement is not None and ga.replacement not in supported:
        allowed = " or ".join(supported) if supported else "none (it has its own survivor selection)"
        problems.append(("ga.replacement", f"{cfg.run.strategy} does not support {ga.replacement!r}: "
                         f"use {allowed}"))
    if ga.init_proxy and (cfg.run.strategy != "island-ga" or task.genome_family != "layers"):
        problems.append(("ga.init_proxy", f"proxy-scored initial walks (Klos #9) need run.strategy = island-ga and "
                         f"task.genome_family = layers, not {cfg.run.strategy} with {task.genome_family}"))
    uses_tournament = ga.selection == "tournament" or cfg.run.strategy == "regularized-evolution"
    if uses_tournament and ga.tournament_size > ga.population:
        problems.append(("ga.tournament_size", f"must not exceed ga.population ({ga.population})"))
    if cfg.migration.datasets > ga.islands:
        problems.append(("migration.datasets", f"must not exceed ga.islands ({ga.islands})"))
    objectives = cfg.nsga2.objectives or [fitness.primary, fitness.secondary]
    if ("latency_ms" in objectives or fitness.secondary == "latency_ms") and not train.measure_latency:
        key = "fitness.secondary" if fitness.secondary == "latency_ms" else "nsga2.objectives"
        problems.append((key, "latency_ms needs train.measure_latency = true"))
    if cfg.run.strategy in ("nsga2", "linas") and len(objectives) < 2:
        problems.append(("nsga2.objectives", f"{cfg.run.strategy} needs at least two objectives"))
    problems.extend(_stop_rule_problems(cfg))
    return problems


def _stop_rule_problems(cfg: RunConfig) -> list[tuple[str, str]]:
    train = cfg.train
    if train.stop_rule == "off":
        return []
    problems = []
    if train.stop_rule == "below-worst" and cfg.run.strategy not in ("island-ga", "mu-plus-lambda"):
        problems.append(("train.stop_rule", f"below-worst needs a population with a worst member (island-ga or "
                         f"mu-plus-lambda), not {cfg.run.strategy}; use median"))
    if cfg.fitness.primary != "val_accuracy":
        problems.append(("train.stop_rule", "compares validation accuracy curves: needs fitness.primary = "
                         "val_accuracy"))
    if train.kfolds > 1 or train.mode == "proxy":
        problems.append(("train.stop_rule", "needs one training per child (train.kfolds = 1, train.mode = full)"))
    return problems


def _seed_genome_problem(text: str, family: str) -> str | None:
    """Why `text` is not a genome of `family` (None: it parses); shapes are checked at run start."""
    from nascli.errors import GenomeError
    from nascli.ga.genome import parse_genome
    from nascli.ga.modules import parse_module_genome

    try:
        (parse_module_genome if family == "modules" else parse_genome)(text)
    except GenomeError as error:
        example = "5x5conv2d:16,3x3conv2d:32" if family == "modules" else "In_8_8:C_3-3-1-1-16:D_10"
        return f"is not a {family} genome (task.genome_family), e.g. {example}: {error.message}"
    return None


# (channels, height, width, classes) of the built-in datasets.
DATASET_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "digits": (1, 8, 8, 10),
    "mnist": (1, 28, 28, 10),
    "fashion-mnist": (1, 28, 28, 10),
    "cifar10": (3, 32, 32, 10),
    "stl10": (3, 96, 96, 10),
}


def dataset_shape(name: str) -> tuple[int, int, int, int]:
    """(channels, height, width, classes) of a built-in dataset; `synthetic` is configured, see input_shape."""
    from nascli.errors import ConfigError

    try:
        return DATASET_SHAPES[name]
    except KeyError:
        known = ", ".join(DATASET_SHAPES)
        raise ConfigError(f"task.dataset: no fixed shape for {name!r}",
                          hint=f"known datasets: {known}; synthetic uses task.synthetic_shape") from None


def input_shape(task: TaskSection | dict[str, Any]) -> tuple[int, int, int, int]:
    """(channels, height, width, classes) a genome sees for this [task] section (a model or its dict)."""
    section = task if isinstance(task, TaskSection) else TaskSection.model_validate(task)
    if section.dataset == "synthetic":
        channels, height, width = section.synthetic_shape
        return channels, height, width, section.synthetic_classes
    return dataset_shape(section.dataset)
