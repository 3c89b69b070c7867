"""What the chemotherapy runs (cycle registry, OMOP and trial records) share around their stages:
the redacted config, episode ids and splits, and the manifest's last steps (written last of all).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from dosewise.data_schemas import RunManifest, TrajectoryDatasetInfo

from ..episodes import episode_ids as make_episode_ids
from ..episodes import episode_ids_and_splits
from ..privacy import RunIds
from ..runner import StageRunner
from .config import ChemoPipelineConfig


def redacted_config(config: ChemoPipelineConfig) -> dict[str, Any]:
    """The resolved config for the manifest, with the pseudonym salt removed."""
    data = config.model_dump(mode="json")
    if data["output"]["id_salt"]:
        data["output"]["id_salt"] = "<redacted>"
    return data


def episode_id_function(config: ChemoPipelineConfig, run_ids: RunIds) -> Callable[[list[str]], list[str]]:
    """`patient keys -> episode ids`, as `episode_ids` names them (pseudonyms or `patient_<id>`)."""
    out = config.output

    def ids(keys: list[str]) -> list[str]:
        return make_episode_ids(
            keys, pseudonymize=out.pseudonymize_ids, salt=run_ids.salt, raw_prefix="patient_"
        )

    return ids


def episode_ids(
    patients: pd.DataFrame, config: ChemoPipelineConfig, run_ids: RunIds
) -> tuple[dict[str, str], pd.DataFrame]:
    """Each patient's episode id and the seeded patient-level split."""
    out = config.output
    keys = patients["patient_id"].astype(str).tolist()
    ids, splits = episode_ids_and_splits(
        keys,
        keys,
        pseudonymize=out.pseudonymize_ids,
        salt=run_ids.salt,
        fractions=out.split_fractions,
        seed=config.seed,
        raw_prefix="patient_",
    )
    return dict(zip(keys, ids, strict=True)), splits


def finish_manifest(
    manifest: RunManifest,
    runner: StageRunner,
    out_dir: Path,
    dataset: TrajectoryDatasetInfo,
    extra: dict[str, Any],
    run_ids: RunIds,
    warnings: list[str],
) -> RunManifest:
    """The manifest's dataset, notes, stage records and output hashes, written last into `out_dir`."""
    manifest.dataset = dataset
    manifest.extra = {**extra, "id_salt_fingerprint": run_ids.fingerprint, "warnings": warnings}
    manifest.stages = runner.records
    manifest.record_outputs(out_dir)
    manifest.write(out_dir)
    return manifest
