"""Policy quality on the oncology simulator: learned policies' true values vs the clinicians' and
the best fixed dose, by Monte Carlo on common random numbers (value ± SE, paired difference ± SE).

Learned policies are trained with the shipped `chemo_*` configs on one simulated cohort (records ->
`etl chemo` -> `dosewise train`'s API). A learned policy recommends an RDI; its true value is given
two ways: that RDI as a dose on schedule, and that RDI delivered the way the clinicians deliver it
(`DeliveredAsClinicians`: RDI 0.75 is mostly full dose a week late in their records, the meaning the
policy learned from). Fixed policies: always RDI 1.0, 0.9, 0.8 and 2/3 on schedule; the best of them
is the one with the highest true value. Goal: the learned policy of the shipped config the demo
trains (`CHEMO_ALGO` in app/demo_chemo.py, `chemo_discrete_cql`; marked "demo") beats the
clinicians' dose-modification policy by more than its Monte-Carlo standard error (and by more than
the paired difference's SE).

    .venv/bin/python bench/chemo_policy_quality.py [--patients 3000] [--truth-patients 200000]
        [--algos chemo_discrete_cql,chemo_iql,chemo_cql,chemo_td3_plus_bc] [--train-steps N] [--seed S]
    (an entry may carry overrides: chemo_cql+mask.source=observed_support+mask.dose_candidates=20)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chemo_common import chemo_trajectories, simulator_policy, train_chemo

from dosewise.app.demo_chemo import CHEMO_ALGO
from dosewise.data_schemas.console import print_table
from dosewise.models import load_policy
from dosewise.pipelines import ClinicianPolicy, ConstantPolicy, compare_policies

FIXED = {"always RDI 1.0": 1.0, "always RDI 0.9": 0.9, "always RDI 0.8": 0.8, "always RDI 0.67": 2.0 / 3.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=3000)
    parser.add_argument("--truth-patients", type=int, default=200000)
    parser.add_argument("--algos", default="chemo_discrete_cql,chemo_iql,chemo_cql,chemo_td3_plus_bc",
                        help="comma-separated shipped train configs, each optionally with +KEY=VALUE "
                        "overrides "
                        "(e.g. chemo_cql+mask.source=observed_support+mask.dose_candidates=20)")
    parser.add_argument("--train-steps", type=int, default=None, help="default: the shipped config's")
    parser.add_argument("--seed", type=int, default=80_000)
    parser.add_argument("--trained", type=Path, nargs="*", default=[],
                        help="policy folders trained already (evaluated beside --algos; --algos '' for none)")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = chemo_trajectories(root, args.patients, args.seed) if args.algos else None
        policies = {"clinicians": ClinicianPolicy()}
        policies |= {name: ConstantPolicy(rdi) for name, rdi in FIXED.items()}
        learned_all = [load_policy(folder) for folder in args.trained]
        names = [folder.name for folder in args.trained]
        for i, spec in enumerate(filter(None, args.algos.split(","))):
            algo, *overrides = spec.split("+")
            learned_all.append(train_chemo(data, algo, root / f"policy_{i}", args.train_steps,
                                           overrides=overrides))
            names.append(spec)
            print(f"trained {spec} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        for name, learned in zip(names, learned_all, strict=True):
            policies[name] = simulator_policy(learned)
            policies[f"{name}, as clinicians deliver"] = simulator_policy(learned, "as_clinicians")
        table = compare_policies(policies, n_patients=args.truth_patients, seed=args.seed + 1,
                                 baseline="clinicians")
    best_fixed = table[table["policy"].isin(FIXED)].sort_values("value").iloc[-1]["policy"]
    rows = []
    for r in table.itertuples():
        kind = "clinicians" if r.policy == "clinicians" else "fixed" if r.policy in FIXED else "learned"
        verdict = "-"
        if kind == "learned":
            beats = r.difference > r.difference_se and r.difference > r.se
            verdict = "beats clinicians" if beats else "does NOT beat clinicians"
        mark = " (best fixed)" if r.policy == best_fixed else " (demo)" if r.policy == CHEMO_ALGO else ""
        rows.append((r.policy + mark, kind,
                     f"{r.value:.4f} ± {r.se:.4f}", f"{r.difference:+.4f} ± {r.difference_se:.4f}", verdict))
    minutes = (time.perf_counter() - started) / 60
    parts = [f"trained on {args.patients} simulated patients"] if args.algos else []
    parts += [f"{len(args.trained)} policy folder(s) trained before"] if args.trained else []
    source = " and ".join(parts)
    print_table(f"Chemo policy quality: {source}, true values from "
                f"{args.truth_patients} patients (common random numbers); {minutes:.1f} min",
                ["policy", "kind", "true value ± MC SE", "vs clinicians (paired) ± SE", "goal"], rows)


if __name__ == "__main__":
    main()
