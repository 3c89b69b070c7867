"""What the report says about FQE: which FQE ran and what its interval holds (`bootstrap.fqe_note`,
`fqe_refits`), and tabular FQE's refit-paired interval with its support (`fqe_support`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from dosewise.data_schemas.ope import FqeSupport

from .bootstrap import refit_paired_interval
from .config import OpeConfig
from .episodes import EpisodeLayout
from .fqe_method import FqeChoice
from .fqe_tabular import TabularFqe

FQE_NOTE = ("Not an honest interval: fqe.bootstrap_refits = 0, so the FQE interval resamples the evaluated "
            "episodes around one fitted Q-function and leaves out the error of fitting it (it covered the "
            "exact ICU-Sepsis value in 0-10 % of replications; bench/ope_coverage.py --fqe-intervals "
            "--method neural). DR and WDR use that Q-function as a control variate: fitted on other "
            "episodes, it leaves them unbiased.")
REFIT_NOTE = ("The FQE interval adds the spread of {k} FQE refits on episode-bootstrap resamples of the "
              "`{split}` split (1.4826 x their median absolute deviation, so one divergent refit does not "
              "blow it up; Student t with {dof} degrees of freedom). DR and WDR need no refits: with a "
              "Q-function fitted on other episodes they stay unbiased, so their episode bootstrap holds "
              "their uncertainty.")
TABULAR_NOTE = ("Tabular FQE (closed-form least-squares FQE on one-hot state-action features): the "
                "FQE interval pairs each resample of the evaluated episodes with one of {k} closed-form "
                "refits on episode-bootstrap resamples of the `{split}` split (basic bootstrap), and spans "
                "the whole return range for states the fit data cannot value; fqe_support says how much "
                "of each target's value rests on never-logged pairs.")
TABULAR_ONE_FIT = ("Not an honest interval: fqe.tabular_refits < 2, so the FQE interval resamples the "
                   "evaluated episodes around one fitted Q-function and leaves out the error of fitting it.")


def fqe_note(config: OpeConfig, choice: FqeChoice) -> str:
    """Which FQE ran, why, and what the FQE/DR/WDR intervals include."""
    if choice.method == "tabular":
        note = TABULAR_NOTE.format(k=config.fqe.tabular_refits, split=config.fqe.fit_split)
        return f"{choice.reason}. {note if config.fqe.tabular_refits >= 2 else TABULAR_ONE_FIT}"
    if not config.fqe.bootstrap_refits or "FQE" not in config.estimators:
        return f"{choice.reason}. {FQE_NOTE}"
    k = config.fqe.bootstrap_refits
    return f"{choice.reason}. {REFIT_NOTE.format(k=k, split=config.fqe.fit_split, dof=k - 1)}"


def fqe_refits(config: OpeConfig, method: str, refit_sd: dict[str, float]) -> int:
    """The refits behind the FQE interval (0: none)."""
    if method == "tabular":
        k = config.fqe.tabular_refits
        return k if "FQE" in config.estimators and k >= 2 else 0
    return config.fqe.bootstrap_refits if refit_sd else 0


def tabular_intervals(results: dict[str, Any], tabular: dict[str, TabularFqe], layout: EpisodeLayout,
                      config: OpeConfig, returns: tuple[float, float]) -> list[FqeSupport]:
    """Replace each tabular target's FQE interval by the refit-paired bootstrap (in `results`) and
    say how much of its value the fit data show."""
    first_rows = layout.pad(np.arange(len(layout.episode_index)), -1)[:, 0].astype(np.int64)
    out = []
    for target, fit in tabular.items():
        starts = fit.rows_state[first_rows]
        main = fit.main
        key = f"{target}|FQE"
        if key in results and fit.refit_low.shape[0] >= 2:
            results[key] = refit_paired_interval(
                (float(main.v_low[starts].mean()), float(main.v_high[starts].mean())),
                fit.refit_low[:, starts], fit.refit_high[:, starts], n_resamples=config.n_bootstrap,
                seed=config.seed, confidence=config.confidence)
        span = returns[1] - returns[0]
        unknown = float((main.v_high - main.v_low)[starts].mean() / span) if span > 0 else 0.0
        never_logged, steps = float(main.pooled_steps[starts].mean()), float(main.steps[starts].mean())
        share = never_logged / steps if steps > 0 else 0.0
        out.append(FqeSupport(target=target, method="tabular", n_states=fit.n_states,
                              never_logged_steps=max(never_logged, 0.0),
                              never_logged_share=min(max(share, 0.0), 1.0),
                              unknown_share=min(max(unknown, 0.0), 1.0)))
    return out
