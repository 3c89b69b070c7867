"""Real trial records: OPE of "always arm k" against each arm's Kaplan-Meier outcome (NCCTG colon),
the known randomisation propensity beside the fitted one, and a learned two-stage policy (AML myeloid).

Colon (`registry_colon`): 5-year recurrence-free survival, IPCW with a Kaplan-Meier censoring model
per arm; every estimator of `ope_trial` on the test split for each arm, beside the arm's
Kaplan-Meier estimate on the same patients (Greenwood log-log 95 % interval). Myeloid
(`registry_myeloid`): 2-year overall survival; discrete CQL through `dosewise train`, its
stage-2 (transplant) recommendations and its OPE value beside the clinicians'.

    .venv/bin/python bench/trial_validation.py [--source ../shared/data/r-clinical-datasets]
        [--train-steps 2000] [--estimators IS,WIS,DR,WDR,FQE]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from dosewise.app.cli import app
from dosewise.data_schemas import columns as c
from dosewise.data_schemas import load_config, read_trajectories
from dosewise.data_schemas.console import print_table
from dosewise.models import config_folder as model_configs
from dosewise.models.constant_policy import constant_policy
from dosewise.models.ope.config import OpeConfig
from dosewise.models.ope.report import evaluate_policy
from dosewise.models.policy import load_policy
from dosewise.pipelines import ChemoPipelineConfig, config_folder, run_chemo_pipeline

SALT = ["output.id_salt=bench-salt-0123456789abcdef"]


def _etl(source: Path, name: str, out: Path) -> None:
    cfg = load_config(name, ChemoPipelineConfig, SALT, search=[config_folder()])
    run_chemo_pipeline(cfg, source, out, show_progress=False)


def _sets(estimators: list[str]) -> list[str]:
    needs_q = bool({"DR", "WDR", "FQE"} & set(estimators))
    return [
        "estimators=[" + ",".join(f'"{e}"' for e in estimators) + "]",
        f"fqe.enabled={str(needs_q).lower()}",
    ]


def colon(source: Path, work: Path, estimators: list[str]) -> None:
    out = work / "colon"
    _etl(source, "registry_colon", out)
    _, manifest = read_trajectories(out)
    info = manifest.dataset
    if info is None:
        raise SystemExit(f"{out} has no dataset contract")
    observed = manifest.extra["observed_by_arm"]["test"]
    sets = _sets(estimators)
    rows, propensity = [], []
    for k, arm in enumerate(info.action_labels):
        refits = [f"behaviour.propensity_refits={200 if k == 0 else 0}"]
        config = load_config("ope_trial", OpeConfig, sets + refits, search=[model_configs()])
        report = evaluate_policy(
            out,
            constant_policy(f"constant:{arm}", info),
            config,
            split="test",
            out_dir=work / f"ope_{k}",
            show_progress=False,
        )
        km = observed[arm]
        for e in report.estimates:
            if e.target != "clinicians":
                inside = km["ci_low"] <= e.value <= km["ci_high"] and e.ci_low <= km["km"] <= e.ci_high
                rows.append(
                    (
                        arm,
                        km["n"],
                        f"{km['km']:.3f} [{km['ci_low']:.3f}, {km['ci_high']:.3f}]",
                        e.estimator,
                        f"{e.value:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]",
                        "yes" if inside else "NO",
                    )
                )
        if k == 0:
            propensity = [
                (
                    a.label,
                    a.n_logged,
                    f"{a.known:.4f}",
                    f"{a.fitted:.4f}",
                    f"[{a.ci_low:.4f}, {a.ci_high:.4f}]",
                )
                for a in report.behaviour.by_action
            ]
    print_table(
        "Colon (test split): 5-year RFS, Kaplan-Meier per arm vs OPE of always arm k (95 % CI)",
        ["arm", "patients", "Kaplan-Meier", "estimator", "OPE", "each inside the other's CI"],
        rows,
    )
    print_table(
        "Colon: randomisation propensity (known) vs the fitted behaviour model (mean over test "
        "states; 95 % interval over 200 refits)",
        ["arm", "steps", "known", "fitted", "95 % CI"],
        propensity,
    )


def myeloid(source: Path, work: Path, steps: int, estimators: list[str]) -> None:
    out, policy_dir = work / "myeloid", work / "myeloid_policy"
    _etl(source, "registry_myeloid", out)
    result = CliRunner().invoke(
        app,
        [
            "--quiet",
            "train",
            "--trajectories",
            str(out),
            "--algo",
            "discrete_cql",
            "--steps",
            str(steps),
            "--device",
            "cpu",
            "--out",
            str(policy_dir),
            "--no-track",
            "--set",
            "algorithm.gamma=1.0",
            "--set",
            "mask.min_count=5",
        ],
    )
    if result.exit_code != 0:
        raise SystemExit(result.output)
    policy = load_policy(policy_dir)
    frame, _ = read_trajectories(out)
    second = frame[frame[c.STEP] == 1]
    rec = pd.Series(policy.recommend(second[policy.feature_names]), index=second.index)
    groups = second.groupby(["response_by_decision", "progression_by_decision"])
    print_table(
        "Myeloid stage 2: share recommended transplant by history at the decision (all splits)",
        [
            "CR by decision",
            "relapse by decision",
            "steps",
            "clinicians transplanted",
            "policy recommends transplant",
        ],
        [
            (int(cr), int(rl), len(g), f"{g[c.ACTION].mean():.2f}", f"{rec[g.index].mean():.2f}")
            for (cr, rl), g in groups
        ],
    )
    first = pd.Series(policy.recommend(frame.loc[frame[c.STEP] == 0, policy.feature_names])).value_counts()
    config = load_config("ope_trial", OpeConfig, _sets(estimators), search=[model_configs()])
    report = evaluate_policy(
        out, policy, config, split="test", out_dir=work / "myeloid_ope", show_progress=False
    )
    print_table(
        f"Myeloid (test split, {report.n_episodes} episodes): 2-year OS; stage-1 recommendations "
        f"{first.to_dict()} (0 = A, 1 = B)",
        ["target", "estimator", "value", "95 % CI", "ESS"],
        [
            (
                e.target,
                e.estimator,
                f"{e.value:.3f}",
                f"[{e.ci_low:.3f}, {e.ci_high:.3f}]",
                "-" if e.ess is None else f"{e.ess:.0f}",
            )
            for e in report.estimates
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("../shared/data/r-clinical-datasets"))
    parser.add_argument("--train-steps", type=int, default=2000)
    parser.add_argument("--estimators", default="IS,WIS,DR,WDR,FQE")
    args = parser.parse_args()
    estimators = args.estimators.split(",")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        colon(args.source, Path(tmp), estimators)
        myeloid(args.source, Path(tmp), args.train_steps, estimators)
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
