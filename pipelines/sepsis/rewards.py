"""Rewards: terminal +/-R on the outcome, optional SOFA/lactate shaping (Raghu et al. 2017).

Raghu et al., "Deep reinforcement learning for sepsis treatment" (2017): r = C0*1[SOFA_{t+1} = SOFA_t
and SOFA_{t+1} > 0] + C1*(SOFA_{t+1} - SOFA_t) + C2*tanh(lactate_{t+1} - lactate_t), terminal +/-15.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def terminal_outcome_reward(last_step: pd.Series, died: pd.Series, magnitude: float) -> np.ndarray:
    """+magnitude on an episode's last step when the patient survived, -magnitude when they died."""
    sign = np.where(died.to_numpy(dtype=bool), -1.0, 1.0)
    return np.where(last_step.to_numpy(dtype=bool), sign * magnitude, 0.0)


def intermediate_sofa_lactate_reward(
    frame: pd.DataFrame, c0: float, c1: float, c2: float, episode: str = "stay_id"
) -> np.ndarray:
    """Raghu 2017 shaping from each step to the next (0 on the last step); `frame` sorted by episode, step."""
    grouped = frame.groupby(episode, sort=False)
    sofa_next = grouped["sofa_24h"].shift(-1)
    lact_next = grouped["lactate_mmol_l"].shift(-1)
    sofa, lact = frame["sofa_24h"], frame["lactate_mmol_l"]
    r = (
        c0 * ((sofa_next == sofa) & (sofa_next > 0)).astype(float)
        + c1 * (sofa_next - sofa)
        + c2 * np.tanh(lact_next - lact)
    )
    return np.asarray(r.fillna(0.0).to_numpy(dtype="float64"), dtype="float64")
