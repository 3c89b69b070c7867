"""Column names shared by the pipelines, the learners and the app, with units in the names.

One place for every name means SQL templates, pandas code and schemas cannot drift apart.
"""

from __future__ import annotations

# Identifiers and time grid
SUBJECT_ID = "subject_id"
HADM_ID = "hadm_id"
STAY_ID = "stay_id"
EPISODE_ID = "episode_id"
STEP = "step"
BIN_START = "bin_start"
SPLIT = "split"

# Actions
ACTION = "action"
FLUID_ML_4H = "fluid_ml_4h"
NOREPI_EQ_MCG_KG_MIN = "norepi_eq_mcg_kg_min"
FLUID_BIN = "fluid_bin"
VASO_BIN = "vaso_bin"
BEHAVIOUR_PROB = "behaviour_prob"
BEHAVIOUR_DENSITY = "behaviour_density"

# Chemotherapy cycle actions (dimensionless ratios and days)
RDI_FRACTION = "rdi_fraction"
DOSE_FRACTION = "dose_fraction"
DELAY_DAYS = "delay_days"

# Transition bookkeeping
REWARD = "reward"
TERMINAL = "terminal"
TIMEOUT = "timeout"

# Simulator state id (ICU-Sepsis MDP)
MDP_STATE = "mdp_state"

# Outcomes
DIED_IN_HOSPITAL = "died_in_hospital"
DIED_90D = "died_90d"

SPLITS = ("train", "validation", "test")

#: Columns of a trajectories table that are never state features.
NON_STATE_COLUMNS = frozenset(
    {
        EPISODE_ID,
        STEP,
        BIN_START,
        ACTION,
        FLUID_ML_4H,
        NOREPI_EQ_MCG_KG_MIN,
        FLUID_BIN,
        VASO_BIN,
        BEHAVIOUR_PROB,
        BEHAVIOUR_DENSITY,
        RDI_FRACTION,
        DOSE_FRACTION,
        DELAY_DAYS,
        REWARD,
        TERMINAL,
        TIMEOUT,
        MDP_STATE,
        SPLIT,
    }
)


def fluid_column(bin_hours: int) -> str:
    """Name of the per-bin IV fluid volume column for bins of `bin_hours` hours.

    >>> fluid_column(4)
    'fluid_ml_4h'
    """
    return f"fluid_ml_{bin_hours}h"


def fluid_raw_column(bin_hours: int) -> str:
    """Name of the per-bin raw (not tonicity-adjusted) IV fluid volume column.

    >>> fluid_raw_column(4)
    'fluid_raw_ml_4h'
    """
    return f"fluid_raw_ml_{bin_hours}h"
