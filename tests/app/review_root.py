"""A data root for the review app, made by the real producers: ICU-Sepsis episodes, a trained
policy, its OPE report, and the policy registered (alias `champion`) in a sqlite MLflow store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dosewise import models, pipelines

MODEL_NAME = "sepsis-dosing"


@dataclass(frozen=True)
class ReviewRoot:
    """Where each part of the data root lies."""

    root: Path
    dataset: Path
    policy: Path
    ope: Path
    tracking_uri: str
    run_id: str


def build_dataset(root: Path, episodes: int = 60, seed: int = 0) -> Path:
    """A small ICU-Sepsis trajectories folder (`root/icu_sepsis`)."""
    out = root / "icu_sepsis"
    pipelines.write_icu_sepsis_episodes(out, episodes, behaviour="clinician", seed=seed)
    return out


def build_etl_root(root: Path, stays: int = 200) -> tuple[Path, Path]:
    """Synthetic MIMIC-IV -> sepsis ETL (cohort, funnel, quarantine, doses in units) -> a tiny policy
    folder beside it (no registry): `root/sepsis`, `root/policy`."""
    from dosewise.data_schemas import load_config

    source = root.parent / f"{root.name}_source"
    pipelines.write_synthetic_icu(source, stays, seed=0, show_progress=False)
    config = load_config("sepsis_mimic4", pipelines.SepsisPipelineConfig, search=[pipelines.config_folder()],
                         overrides=["output.id_salt=review-app-test-salt"])
    dataset = root / "sepsis"
    pipelines.run_sepsis_pipeline(config, source, dataset, show_progress=False)
    config_train = models.TrainConfig(n_steps=20, batch_size=64, log_every=10, device="cpu")
    trained = models.train_policy(dataset, config_train, out_dir=root / "policy", show_progress=False)
    return dataset, trained.policy_dir


def build_review_root(root: Path, episodes: int = 60) -> ReviewRoot:
    """Dataset -> tiny discrete CQL policy -> fast OPE -> MLflow run -> registered `sepsis-dosing`."""
    dataset = build_dataset(root, episodes)
    config = models.TrainConfig(n_steps=30, batch_size=64, log_every=15, device="cpu")
    tracking_uri = models.local_store_uri(root)
    _, run_id = models.start_run(tracking_uri, run_name="review-app-test")
    trained = models.train_policy(dataset, config, out_dir=root / "policy", show_progress=False)
    models.log_training_outputs(run_id, trained.policy_dir, tracking_uri=tracking_uri)
    ope_config = models.OpeConfig.model_validate({
        "n_bootstrap": 20, "bca": False, "estimators": ["IS", "WIS", "PDWIS", "FQE"],
        "behaviour": {"base": "logistic", "max_iter": 50},
        "fqe": {"n_steps": 20, "hidden_units": [16], "bootstrap_refits": 2},
    })
    policy = models.load_policy(trained.policy_dir)
    models.evaluate_policy(dataset, policy, ope_config, split="test", out_dir=root / "ope",
                           show_progress=False)
    models.log_ope_results(run_id, root / "ope", tracking_uri=tracking_uri)
    models.end_run(run_id, tracking_uri=tracking_uri)
    models.register_policy(run_id, MODEL_NAME, alias="champion", tracking_uri=tracking_uri)
    return ReviewRoot(root=root, dataset=dataset, policy=trained.policy_dir, ope=root / "ope",
                      tracking_uri=tracking_uri, run_id=run_id)


def build_chemo_root(root: Path, patients: int = 60) -> tuple[Path, Path]:
    """Beside an ICU-Sepsis dataset: simulated oncology records -> `etl chemo` -> a tiny continuous IQL
    policy folder with its (continuous-action) OPE report: `root/chemo`, `root/chemo_policy`."""
    build_dataset(root, episodes=20)
    source = root.parent / f"{root.name}_records"
    pipelines.write_synthetic_oncology(source, patients, seed=0, fmt="registry", file_format="parquet")
    config = pipelines.ChemoPipelineConfig.model_validate({"output": {"id_salt": "review-app-test-salt"}})
    dataset = root / "chemo"
    pipelines.run_chemo_pipeline(config, source, dataset, show_progress=False)
    algorithm = {"name": "iql", "hidden_units": [16]}
    train = models.TrainConfig.model_validate({"n_steps": 20, "batch_size": 32, "log_every": 10,
                                               "device": "cpu", "algorithm": algorithm})
    trained = models.train_policy(dataset, train, out_dir=root / "chemo_policy", show_progress=False)
    ope = models.OpeConfig.model_validate({"n_bootstrap": 20, "bca": False, "min_episodes": 5,
                                           "estimators": ["IS", "WIS"], "fqe": {"enabled": False}})
    models.evaluate_policy(dataset, models.load_policy(trained.policy_dir), ope, split="test",
                           out_dir=trained.policy_dir / "ope_test", show_progress=False)
    return dataset, trained.policy_dir
