"""The app's one data-access module: every page reads datasets, policies, OPE reports and reviews here.

It calls only the public APIs of `dosewise.data_schemas` and `dosewise.models` (which also fronts
the MLflow registry); loaders are cached with `st.cache_data` / `st.cache_resource`.
"""

from .datasets import (
    Dataset,
    DatasetRef,
    action_bins,
    cohort_columns,
    dataset_columns,
    episode_ids,
    find_datasets,
    load_dataset,
    review_store,
    stay,
)
from .policies import (
    PolicyRef,
    check_features,
    dataset_recommendations,
    find_policies,
    fitting_policies,
    load_policy,
    stay_recommendations,
)
from .reports import (
    LoadedReport,
    behaviour_calibration,
    find_report,
    first_flagged_stay,
    headline,
    headline_reliability,
    support_flags,
)
from .timeline import DOSE_LABELS, bin_summary, default_timeline_columns, dose_frame

__all__ = [
    "DOSE_LABELS",
    "Dataset",
    "DatasetRef",
    "LoadedReport",
    "PolicyRef",
    "action_bins",
    "behaviour_calibration",
    "bin_summary",
    "check_features",
    "cohort_columns",
    "dataset_columns",
    "dataset_recommendations",
    "default_timeline_columns",
    "dose_frame",
    "episode_ids",
    "find_datasets",
    "find_policies",
    "find_report",
    "first_flagged_stay",
    "fitting_policies",
    "headline",
    "headline_reliability",
    "load_dataset",
    "load_policy",
    "review_store",
    "stay",
    "stay_recommendations",
    "support_flags",
]
