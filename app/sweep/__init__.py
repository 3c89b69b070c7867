"""`dosewise sweep`: a parameter sweep on Ray Tune, selected honestly by OPE on a validation split."""

from .config import SweepConfig, load_sweep_config, resolve_trials, trial_settings
from .runner import RESULTS_NAME, SweepOutcome, connect_ray, run_sweep
from .selection import TrialRow, rank_correlation, regret, select_winner

__all__ = [
    "RESULTS_NAME",
    "SweepConfig",
    "SweepOutcome",
    "TrialRow",
    "connect_ray",
    "load_sweep_config",
    "rank_correlation",
    "regret",
    "resolve_trials",
    "run_sweep",
    "select_winner",
    "trial_settings",
]
