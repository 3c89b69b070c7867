"""The model registry: a policy reaches a clinician only as a registered, aliased pyfunc model.

`register_policy` packages a run's saved policy folder (and the behaviour model its OPE fitted)
as a pyfunc model with an explicit signature; `promote_policy` moves `champion` only through the
OPE gate; `load_registered_policy("models:/sepsis-dosing@candidate")` gives the Policy back.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dosewise.data_schemas import BadInputError
from dosewise.data_schemas.ope import OpeReport

from .promotion import PromotionConfig, PromotionDecision, PromotionRefused, decide_promotion
from .runs import OPE_PATH, POLICY_PATH, REPORT_NAME, fetch_run_artifact
from .stores import TrackingStore, connect, tracking_errors, using_store

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODEL_NAME = "policy_model"
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class RegisteredPolicy:
    """One registered model version: where it came from and which aliases point at it."""

    name: str
    version: str
    run_id: str | None
    aliases: tuple[str, ...]
    model_uri: str
    status: str = "READY"

    @property
    def uri(self) -> str:
        """`models:/NAME/VERSION`."""
        return f"models:/{self.name}/{self.version}"


def _as_registered(mv: Any) -> RegisteredPolicy:
    return RegisteredPolicy(
        name=str(mv.name), version=str(mv.version), run_id=mv.run_id, aliases=tuple(mv.aliases or ()),
        model_uri=str(mv.source), status=str(mv.status),
    )


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """`models:/NAME@ALIAS` or `models:/NAME/VERSION` -> (name, alias, version)."""
    match = _URI.match(uri.strip())
    if match is None:
        raise BadInputError(f"`{uri}` is not a registered-model URI.",
                            "Write it as models:/NAME@ALIAS (e.g. models:/sepsis-dosing@candidate) "
                            "or models:/NAME/VERSION.")
    return match["name"], match["alias"], match["version"]


def resolve_registered(uri: str, tracking_uri: str | None = None) -> RegisteredPolicy:
    """The model version a `models:/` URI points at (its run id is where OPE results go)."""
    name, alias, version = parse_model_uri(uri)
    store, client = connect(tracking_uri)
    if alias is not None:
        with tracking_errors(store, f"find alias `{alias}` of model `{name}`"):
            return _as_registered(client.get_model_version_by_alias(name, alias))
    return _get_version(client, store, name, str(version))


def _get_version(client: MlflowClient, store: TrackingStore, name: str, version: str) -> RegisteredPolicy:
    from mlflow.exceptions import MlflowException

    try:
        return _as_registered(client.get_model_version(name, version))
    except MlflowException:
        with tracking_errors(store, f"list the versions of `{name}`"):
            versions = sorted(int(mv.version) for mv in client.search_model_versions(f"name='{name}'"))
        raise BadInputError(
            f"Model `{name}` has no version {version} in {store.uri}"
            + (f"; its versions are {', '.join(map(str, versions))}." if versions else " (no such model)."),
            "`dosewise register` creates versions; pick one that exists.",
        ) from None


def _policy_from_run(run_id: str, tracking_uri: str | None, work: Path) -> tuple[Path, Any]:
    from dosewise.models import load_policy

    try:
        policy_dir = fetch_run_artifact(run_id, POLICY_PATH, tracking_uri=tracking_uri, dst=work)
    except BadInputError as exc:
        raise BadInputError(
            f"Run {run_id} has no policy artefact (`{POLICY_PATH}/`): {exc.message}",
            "Register a run made by `dosewise train`, which logs the saved policy folder.",
        ) from None
    return policy_dir, load_policy(policy_dir)


def _support_model(run_id: str, tracking_uri: str | None, work: Path, policy: Any
                   ) -> tuple[Path | None, list[str], float | None]:
    """The behaviour model, its feature columns and the support threshold from the run's OPE."""
    from ..behaviour import load_behaviour_model

    try:
        report_path = fetch_run_artifact(
            run_id, f"{OPE_PATH}/{REPORT_NAME}", tracking_uri=tracking_uri, dst=work
        )
    except BadInputError:
        return None, [], None
    report = OpeReport.model_validate_json(report_path.read_text(encoding="utf-8"))
    if not report.behaviour.model_file:
        return None, [], None
    model_path = fetch_run_artifact(
        run_id, f"{OPE_PATH}/{Path(report.behaviour.model_file).name}", tracking_uri=tracking_uri, dst=work
    )
    model = load_behaviour_model(model_path)
    names = getattr(model, "feature_names_in_", None)
    features = [str(n) for n in names] if names is not None else list(policy.feature_names)
    if len(features) != int(getattr(model, "n_features_in_", len(features))):
        raise BadInputError(f"The behaviour model of run {run_id} reads {model.n_features_in_} features, "
                            f"the policy {len(policy.feature_names)}.", "Re-run `dosewise evaluate`.")
    return model_path, features, report.support.threshold


def _input_example(run: Any, columns: list[str]) -> pd.DataFrame:
    """A few real states from the run's trajectories when still on disk, else one row of zeros."""
    path = Path(run.data.tags.get("dosewise.trajectories", "")) / "trajectories.parquet"
    if path.is_file():
        try:
            return pd.read_parquet(path, columns=columns).head(3).astype("float64").reset_index(drop=True)
        except (KeyError, ValueError, OSError):
            pass
    return pd.DataFrame({name: [0.0] for name in columns}, dtype="float64")


def register_policy(
    run_id: str, name: str, alias: str | None = None, tracking_uri: str | None = None
) -> RegisteredPolicy:
    """Log the run's policy as a pyfunc model, register it as a new version of `name`, alias it."""
    import mlflow

    from .pyfunc import (
        BEHAVIOUR_ARTIFACT,
        POLICY_ARTIFACT,
        PolicyPyfuncModel,
        input_columns,
        pinned_requirements,
        policy_signature,
    )

    store, client = connect(tracking_uri)
    with tracking_errors(store, f"find run {run_id}"):
        run = client.get_run(run_id)
    with tempfile.TemporaryDirectory(prefix="dosewise-register-") as tmp:
        policy_dir, policy = _policy_from_run(run_id, tracking_uri, Path(tmp) / "policy")
        behaviour_path, behaviour_features, threshold = _support_model(
            run_id, tracking_uri, Path(tmp), policy
        )
        artifacts = {POLICY_ARTIFACT: str(policy_dir)}
        if behaviour_path is not None:
            artifacts[BEHAVIOUR_ARTIFACT] = str(behaviour_path)
        model_config = {"behaviour_features": behaviour_features, "support_threshold": threshold}
        example = _input_example(run, input_columns(policy, behaviour_features))
        with using_store(store), tracking_errors(store, f"log run {run_id}'s policy as a pyfunc model"):
            active = mlflow.active_run()
            reopen = active is None or active.info.run_id != run_id
            context = mlflow.start_run(run_id=run_id, nested=active is not None) if reopen else None
            # The python_model is pickled by reference to the installed PolicyPyfuncModel class
            # (no weights or code inside); MLflow's generic warning about pickles is muted.
            pyfunc_log = logging.getLogger("mlflow.pyfunc")
            level = pyfunc_log.level
            pyfunc_log.setLevel(logging.ERROR)
            try:
                info = mlflow.pyfunc.log_model(
                    name=MODEL_NAME, python_model=PolicyPyfuncModel(), artifacts=artifacts,
                    signature=policy_signature(policy, behaviour_features), input_example=example,
                    pip_requirements=pinned_requirements(), model_config=model_config,
                    metadata={"dosewise.policy_name": policy.name, "dosewise.n_actions": policy.n_actions},
                )
            finally:
                pyfunc_log.setLevel(level)
                if context is not None:
                    mlflow.end_run()
            version = mlflow.register_model(info.model_uri, name, tags={
                "dosewise.run_id": run_id,
                "dosewise.policy_name": str(policy.name),
                "dosewise.support_model": "behaviour_classifier" if behaviour_path else "absent",
                "dosewise.data_sha256": run.data.tags.get("dosewise.data_sha256", "unknown"),
            })
    if alias:
        return alias_policy(name, str(version.version), alias, tracking_uri=tracking_uri)
    return _get_version(client, store, name, str(version.version))


def alias_policy(name: str, version: str, alias: str, tracking_uri: str | None = None) -> RegisteredPolicy:
    """Point `alias` at an existing version of `name` (a missing version is a clear error)."""
    store, client = connect(tracking_uri)
    _get_version(client, store, name, str(version))
    with tracking_errors(store, f"set alias `{alias}` of `{name}`"):
        client.set_registered_model_alias(name, alias, str(version))
    return _get_version(client, store, name, str(version))


def load_registered_policy(uri: str, tracking_uri: str | None = None) -> Any:
    """The Policy behind `models:/NAME@ALIAS` (or `/VERSION`), loaded from the registry."""
    import mlflow

    resolve_registered(uri, tracking_uri)  # clear errors for a missing model, alias or version
    store = connect(tracking_uri)[0]
    with using_store(store), tracking_errors(store, f"load {uri}"):
        model = mlflow.pyfunc.load_model(uri)
    return model.unwrap_python_model().policy


def promote_policy(
    name: str, version: str, config: PromotionConfig | None = None, tracking_uri: str | None = None
) -> PromotionDecision:
    """Move `config.alias` (champion) to `version` only if its OPE passes the gate; else raise
    `PromotionRefused` (exit 2) showing the numbers."""
    config = config or PromotionConfig()
    registered = resolve_registered(f"models:/{name}/{version}", tracking_uri)
    if registered.run_id is None:
        raise BadInputError(f"Version {version} of `{name}` has no source run, so no OPE report.",
                            "Register versions with `dosewise register --run RUN_ID`.")
    try:
        path = fetch_run_artifact(registered.run_id, f"{OPE_PATH}/{REPORT_NAME}", tracking_uri=tracking_uri)
    except BadInputError:
        raise BadInputError(
            f"Run {registered.run_id} of `{name}` version {version} has no OPE report.",
            f"Run `dosewise evaluate --policy models:/{name}/{version} --trajectories DIR` first.",
        ) from None
    report = OpeReport.model_validate_json(path.read_text(encoding="utf-8"))
    decision = decide_promotion(report, config)
    if not decision.passed:
        raise PromotionRefused(
            f"`{name}` version {version} was not promoted to `{config.alias}` "
            f"(split `{report.split}`): {decision.describe()}.",
            "Train or evaluate a better policy, or change the gate in the promotion config.",
            decision,
        )
    alias_policy(name, str(version), config.alias, tracking_uri=tracking_uri)
    return decision


def list_registered_policies(tracking_uri: str | None = None) -> list[RegisteredPolicy]:
    """Every version of every registered model: name, version, run id, aliases."""
    store, client = connect(tracking_uri)
    with tracking_errors(store, "list registered models"):
        aliases: dict[tuple[str, str], list[str]] = {}
        for model in client.search_registered_models():
            for alias, version in (model.aliases or {}).items():
                aliases.setdefault((model.name, str(version)), []).append(alias)
        versions = client.search_model_versions()  # search results carry no aliases: add them
    found = [
        RegisteredPolicy(name=str(mv.name), version=str(mv.version), run_id=mv.run_id,
                         aliases=tuple(sorted(aliases.get((str(mv.name), str(mv.version)), []))),
                         model_uri=str(mv.source), status=str(mv.status))
        for mv in versions
    ]
    return sorted(found, key=lambda r: (r.name, int(r.version)))
