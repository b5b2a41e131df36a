"""Run configuration: schema, YAML loading, presets."""

from synthmed.config.loading import (
    config_hash,
    config_to_dict,
    dump_yaml,
    list_presets,
    load_run_config,
    resolve_config,
)
from synthmed.config.schema import (
    DataConfig,
    EvaluateConfig,
    ModelConfig,
    PatchConfig,
    PreprocessConfig,
    RunConfig,
    SampleConfig,
    SourceConfig,
    SplitConfig,
    TrainConfig,
    UtilityConfig,
)

__all__ = [
    "DataConfig",
    "EvaluateConfig",
    "ModelConfig",
    "PatchConfig",
    "PreprocessConfig",
    "RunConfig",
    "SampleConfig",
    "SourceConfig",
    "SplitConfig",
    "TrainConfig",
    "UtilityConfig",
    "config_hash",
    "config_to_dict",
    "dump_yaml",
    "list_presets",
    "load_run_config",
    "resolve_config",
]
