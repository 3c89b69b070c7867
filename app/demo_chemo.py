"""The demo's chemotherapy leg: a learned dose-intensity policy trained, evaluated off-policy beside
its true value from the simulator, and registered as `chemo-dose-intensity` behind the OPE gate.

It reads the chemotherapy trajectories an earlier demo step made (`ctx.results["chemo_trajectories"]`)
or simulates and ETLs a cohort itself, so the leg runs on its own too.
"""

from __future__ import annotations

from typing import Any

from dosewise import models, pipelines
from dosewise.data_schemas import load_config

CHEMO_MODEL_NAME = "chemo-dose-intensity"
# discrete CQL on the RDI bins: the learned chemo policy that beats the clinicians on the simulator
# (README "Chemotherapy policy quality"; chemo_iql, continuous, does not), and the fastest to train
CHEMO_ALGO = "chemo_discrete_cql"


def _chemo_trajectories(ctx: Any) -> Any:
    """The leg's trajectories: an earlier step's, else simulate (registry format) and ETL here."""
    folder = ctx.results.get("chemo_trajectories")
    if folder is not None:
        return folder
    source, folder = ctx.out / "chemo_records", ctx.out / "chemo_trajectories"
    pipelines.write_synthetic_oncology(source, ctx.sizes.chemo_patients, seed=0, fmt="registry",
                                       file_format="parquet")
    config = pipelines.ChemoPipelineConfig.model_validate({"output": {"id_salt": "dosewise-demo-salt-16"}})
    pipelines.run_chemo_pipeline(config, source, folder, show_progress=not ctx.quiet)
    ctx.results["chemo_trajectories"] = folder
    return folder


def _truths(policy: Any, folder: Any, epsilon: float, n_patients: int) -> tuple[Any, Any]:
    """Monte-Carlo values of the leg's policy on the RDI bins: the OPE estimand (each state's bin
    drawn from the policy's epsilon-greedy probabilities, as `evaluate` softens it, then delivered the
    way the clinicians deliver an RDI in that bin: `BinDeliveredAsClinicians`) and, beside it, the
    bins' train-split median RDI given on schedule (what following the recommendation to the letter
    does). WDR is compared with the first; the README measures the gap (about 0.002)."""
    import numpy as np

    from dosewise.data_schemas import BadInputError, RunManifest
    from dosewise.data_schemas import columns as c

    info = RunManifest.read(folder).dataset
    if info is None or c.RDI_FRACTION not in info.action_bin_edges:
        raise BadInputError(f"{folder} has no RDI bin edges in its manifest: it is not a chemotherapy "
                            "trajectories folder.", "Rerun the leg's ETL (`dosewise etl chemo`).")
    edges = [float(e) for e in info.action_bin_edges[c.RDI_FRACTION]]

    def probs(states: Any) -> Any:
        frame = states[list(policy.feature_names)].astype(np.float64)
        return np.asarray(policy.action_probabilities(frame, epsilon), dtype=np.float64)

    def doses(states: Any) -> Any:
        frame = states[list(policy.feature_names)].astype(np.float64)
        return np.clip(policy.recommend_doses(frame)[c.RDI_FRACTION].to_numpy(np.float64), 0.0, None)

    estimand = pipelines.true_policy_value(pipelines.BinDeliveredAsClinicians(probs, tuple(edges)),
                                           n_patients, seed=1)
    on_schedule = pipelines.true_policy_value(pipelines.policy_from_function(doses), n_patients, seed=1)
    return estimand, on_schedule


def step_chemo_policy(ctx: Any) -> str:
    """Train CHEMO_ALGO (tracked), OPE on the test split beside the true value, register + gate."""
    folder = _chemo_trajectories(ctx)
    train = load_config(CHEMO_ALGO, models.TrainConfig, [f"n_steps={ctx.sizes.train_steps}", "device='cpu'"],
                        search=[models.config_folder()])
    policy_dir = ctx.out / "chemo_policy"
    tracked = models.train_tracked(folder, train, out_dir=policy_dir, tracking_uri=ctx.tracking_uri,
                                   show_progress=not ctx.quiet)
    overrides = [f"n_bootstrap={ctx.sizes.n_bootstrap}", f"fqe.n_steps={ctx.sizes.fqe_steps}",
                 "fqe.learning_rate=0.001", "fqe.target_update_interval=50",
                 "fqe.bootstrap_refits=0"]  # the headline is WDR; FQE rows say they rest on one fit
    ope = load_config("ope_default", models.OpeConfig, overrides, search=[models.config_folder()])
    evaluated = models.evaluate_tracked(folder, policy_dir, ope, split="test",
                                        out_dir=policy_dir / "ope_test", tracking_uri=ctx.tracking_uri,
                                        show_progress=not ctx.quiet)
    policy = models.load_policy(policy_dir)
    # the clinicians' true value: the ETL step
    truth, on_schedule = _truths(policy, folder, ope.epsilon, ctx.sizes.chemo_truth_patients)
    wdr = evaluated.report.estimate("WDR", policy.name)
    registered = models.register_policy(tracked.run_id, CHEMO_MODEL_NAME, alias="candidate",
                                        tracking_uri=ctx.tracking_uri)
    try:
        decision = models.promote_policy(CHEMO_MODEL_NAME, registered.version, tracking_uri=ctx.tracking_uri)
        promoted = True
    except models.PromotionRefused as refused:
        decision, promoted = refused.decision, False
    gated = evaluated.report.estimate(decision.estimator, policy.name)
    note = evaluated.report.reliability(gated)  # an unreliable value is never shown as a passing comparison
    gate = (f"{'promoted to champion' if promoted else 'kept out of champion by the OPE gate'} "
            + (f"({decision.describe()})" if note is None else
               f"({decision.estimator} {gated.value:.3f} [{gated.ci_low:.3f}, {gated.ci_high:.3f}], {note})"))
    return (f"{policy.name}: WDR {wdr.value:.3f} [{wdr.ci_low:.3f}, {wdr.ci_high:.3f}] vs true value "
            f"{truth.value:.3f} ± {truth.se:.3f} (Monte Carlo ± SE, its bins delivered as the clinicians "
            f"deliver them, epsilon {ope.epsilon:g}; its RDI given on schedule {on_schedule.value:.3f} ± "
            f"{on_schedule.se:.3f}); "
            f"models:/{CHEMO_MODEL_NAME}@candidate = version {registered.version}; {gate}")


def step_oncology_records(ctx: Any) -> str:
    """Simulated docetaxel cycles (Friberg 2002, Claret 2009) written as an OMOP CDM oncology folder."""
    folder = ctx.out / "oncology_omop"
    manifest = pipelines.write_synthetic_oncology(folder, ctx.sizes.chemo_patients, seed=0, fmt="omop")
    dirt = sum(manifest.extra["dirt_planted"].values())
    n = ctx.sizes.chemo_patients
    return f"{folder}: {n:,} patients, {manifest.extra['n_cycles']:,} cycles, {dirt} dirty rows planted"


def step_chemo_etl(ctx: Any) -> str:
    """OMOP -> chemotherapy cycle trajectories, beside the Monte-Carlo true values of two policies."""
    config = load_config("chemo_omop", pipelines.ChemoPipelineConfig,
                         ["output.id_salt=dosewise-public-demo-salt"], search=[pipelines.config_folder()])
    folder = ctx.out / "chemo_trajectories"
    manifest = pipelines.run_chemo_pipeline(config, ctx.out / "oncology_omop", folder,
                                            show_progress=not ctx.quiet)
    ctx.results["chemo_trajectories"] = folder
    quarantined = sum(s.rows_quarantined for s in manifest.stages)
    values = pipelines.compare_policies(
        {"clinicians": pipelines.ClinicianPolicy(), "always full dose": pipelines.ConstantPolicy(1.0)},
        n_patients=ctx.sizes.chemo_truth_patients, seed=1, reward=config.reward)
    truth = "; ".join(f"{r.policy} {r.value:.3f} +/- {r.se:.3f}" for r in values.itertuples())
    return (f"{folder}: {manifest.extra['n_episodes']} episodes, {manifest.stages[-1].rows_out} cycles, "
            f"{quarantined} rows quarantined; true value (Monte Carlo +/- SE) {truth}")

