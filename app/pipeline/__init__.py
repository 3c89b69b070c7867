"""`dosewise run`: one pipeline config, its declared stages in order, resumable and tracked.

The orchestration lives in the app layer because it calls both `pipelines` (ETL) and `models`
(train, evaluate, register), which never import each other.
"""

from .config import STAGES, PipelineConfig, config_folder, load_pipeline_config
from .runner import EXIT_REFUSED, LOG_NAME, PipelineOutcome, run_pipeline
from .stages import ETL_KINDS, EtlKind

__all__ = ["ETL_KINDS", "EXIT_REFUSED", "LOG_NAME", "STAGES", "EtlKind", "PipelineConfig", "PipelineOutcome",
           "config_folder", "load_pipeline_config", "run_pipeline"]
