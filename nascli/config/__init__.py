"""Typed run configuration: models, presets, resolution and the helpers where sections meet.

Pure (pydantic, no torch). See docs/configuration.md and docs/internals.md.
"""

from nascli.config.helpers import (
    SEARCH_SPACE_KEYS,
    data_dir_of,
    default_data_dir,
    search_space_dict,
    search_space_of,
    task_for,
    training_config_hash,
)
from nascli.config.model import (
    DATASET_SHAPES,
    DATASETS,
    LAYER_TYPES,
    OBJECTIVES,
    STRATEGIES,
    TASK_KINDS,
    FitnessSection,
    GaSection,
    LinasSection,
    MigrationSection,
    Nsga2Section,
    OperatorsSection,
    RunConfig,
    RunSection,
    SearchSpaceSection,
    StoreSection,
    TaskSection,
    TrainSection,
    WorkerSection,
    dataset_shape,
    input_shape,
)
from nascli.config.presets import list_presets, load_preset, preset_names
from nascli.config.resolve import (
    DB_URL_ENV,
    DEFAULT_DB_URL,
    known_keys,
    parse_override,
    resolve,
    resolve_db_url,
    validate_stored,
)
from nascli.config.seed_genome import check_seed_genome

__all__ = [
    "DATASETS", "DATASET_SHAPES", "DB_URL_ENV", "DEFAULT_DB_URL", "LAYER_TYPES", "OBJECTIVES", "SEARCH_SPACE_KEYS",
    "STRATEGIES", "TASK_KINDS", "FitnessSection", "GaSection", "LinasSection", "MigrationSection", "Nsga2Section",
    "OperatorsSection", "RunConfig", "RunSection", "SearchSpaceSection", "StoreSection", "TaskSection",
    "TrainSection", "WorkerSection", "check_seed_genome", "data_dir_of", "dataset_shape", "default_data_dir",
    "input_shape", "known_keys", "list_presets", "load_preset", "parse_override", "preset_names", "resolve",
    "validate_stored",
    "resolve_db_url", "search_space_dict", "search_space_of", "task_for", "training_config_hash",
]
