"""Contracts between the layers: schemas, configs, manifests, validated atomic IO and errors.

This layer imports no other project code; the pipelines, the learners and the app all meet here.
"""

from . import _pyspark_warning, columns  # noqa: F401  (_pyspark_warning: before pandera is imported)
from .config_files import (
    StrictConfig,
    apply_overrides,
    load_config,
    parse_override,
    read_config_source,
    shipped_configs,
    validate_config,
)
from .errors import (
    BadInputError,
    ConfigError,
    DeviceUnavailable,
    DosewiseError,
    IncompleteOutput,
    MissingSourceTable,
    SchemaViolation,
    TrackingError,
)
from .folders import staged_output
from .io import (
    MANIFEST_NAME,
    atomic_path,
    parquet_appender,
    read_parquet_checked,
    require_complete,
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
    write_table_atomic,
    write_text_atomic,
)
from .manifest import (
    CodeVersion,
    FunnelStep,
    RunManifest,
    StageRecord,
    canonical_json,
    config_sha256,
    current_code_version,
)
from .ope import OpeEstimate, OpeReport
from .quarantine import QuarantineSchema, counts_by_rule, empty_quarantine, make_quarantine
from .review import REVIEW_COLUMNS, VERDICTS, ClinicianReviewSchema
from .trajectory import (
    SplitsSchema,
    TrajectoryDatasetInfo,
    TrajectorySchema,
    trajectory_schema_for,
)
from .validation import read_trajectories, validate_frame

__all__ = [
    "MANIFEST_NAME",
    "REVIEW_COLUMNS",
    "VERDICTS",
    "BadInputError",
    "ClinicianReviewSchema",
    "CodeVersion",
    "ConfigError",
    "DeviceUnavailable",
    "DosewiseError",
    "FunnelStep",
    "IncompleteOutput",
    "MissingSourceTable",
    "OpeEstimate",
    "OpeReport",
    "QuarantineSchema",
    "RunManifest",
    "SchemaViolation",
    "SplitsSchema",
    "StageRecord",
    "StrictConfig",
    "TrackingError",
    "TrajectoryDatasetInfo",
    "TrajectorySchema",
    "apply_overrides",
    "atomic_path",
    "canonical_json",
    "columns",
    "config_sha256",
    "counts_by_rule",
    "current_code_version",
    "empty_quarantine",
    "load_config",
    "make_quarantine",
    "parquet_appender",
    "parse_override",
    "read_config_source",
    "read_parquet_checked",
    "read_trajectories",
    "require_complete",
    "sha256_file",
    "shipped_configs",
    "staged_output",
    "trajectory_schema_for",
    "validate_config",
    "validate_frame",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_table_atomic",
    "write_text_atomic",
]
