"""A fitted behaviour model reused across evaluations of the same data: `behaviour.cache_dir`.

Every OPE of one trajectories folder fits the same behaviour model: it depends only on the fit
split's rows, the state features, the behaviour config and the seed, never on the evaluated policy.
A sweep evaluates every trial on the same validation split, so without a cache each trial refits it
(on ICU-Sepsis at 20,000 train episodes: 200,000 rows, about a minute of CPU on an idle core and
10-25 minutes on a loaded machine, against about two seconds for the rest of a WIS evaluation).

With `behaviour.cache_dir` set, the model is stored there under its key, the SHA-256 of

    trajectories manifest hash, fit split, state features, action count, behaviour config (without
    `cache_dir`), OPE seed, code version (git commit and package version)

so the same trajectories and OPE config give the same model, and any change (other data, another
base model, new code) fits a new one. `<key>.joblib` is written first, `<key>.json` (the key's
inputs and the model file's SHA-256) last; a cached model whose bytes do not match its record is
refitted. Concurrent evaluations with one key (a sweep's trials) wait on `<key>.lock`
for the first one's fit. The report records the key, the model's SHA-256 and whether it was fitted or loaded
(`behaviour.cache_key`, `behaviour.model_sha256`, `behaviour.cache`). The fit is deterministic
(seeded), so a loaded model gives the same estimates as a fresh fit.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dosewise.data_schemas import config_sha256, current_code_version, sha256_file, write_json_atomic

from ..behaviour import load_behaviour_model, save_behaviour_model
from .config import OpeConfig


@dataclass(frozen=True)
class BehaviourFit:
    """The behaviour model an evaluation used, and (with a cache) where it came from."""

    model: Any
    cache: Literal["off", "fitted", "loaded"] = "off"
    key: str | None = None
    model_sha256: str | None = None


def behaviour_key_inputs(manifest_sha256: str, features: list[str], n_actions: int,
                         config: OpeConfig) -> dict[str, Any]:
    """Everything the fitted behaviour model depends on (see the module docstring)."""
    behaviour = config.behaviour.model_dump(mode="json", exclude={"cache_dir"})
    code = current_code_version()
    return {"trajectories_manifest_sha256": manifest_sha256, "fit_split": config.behaviour.fit_split,
            "features": list(features), "n_actions": int(n_actions), "behaviour": behaviour,
            "seed": config.seed, "code": {"git_sha": code.git_sha, "package_version": code.package_version}}


def _cached(folder: Path, key: str) -> tuple[Any, str] | None:
    """The model stored under `key` and its SHA-256, or None (absent, unrecorded or altered)."""
    model_file, record_file = folder / f"{key}.joblib", folder / f"{key}.json"
    if not (model_file.is_file() and record_file.is_file()):
        return None
    record = json.loads(record_file.read_text(encoding="utf-8"))
    digest = sha256_file(model_file)
    if record.get("model_sha256") != digest:
        return None
    return load_behaviour_model(model_file), digest


def fit_or_load_behaviour(fit: Callable[[], Any], manifest_sha256: str, features: list[str], n_actions: int,
                          config: OpeConfig) -> BehaviourFit:
    """`fit()` the behaviour model, or load it from `config.behaviour.cache_dir` under its key."""
    if config.behaviour.cache_dir is None:
        return BehaviourFit(fit())
    folder = Path(config.behaviour.cache_dir)
    inputs = behaviour_key_inputs(manifest_sha256, features, n_actions, config)
    key = config_sha256(inputs)
    folder.mkdir(parents=True, exist_ok=True)
    # one fit per key: concurrent evaluations (a sweep's trials) wait for the first one's model
    with open(folder / f"{key}.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            found = _cached(folder, key)
            if found is not None:
                return BehaviourFit(found[0], "loaded", key, found[1])
            model = fit()
            model_file = save_behaviour_model(model, folder / f"{key}.joblib")
            digest = sha256_file(model_file)
            write_json_atomic(folder / f"{key}.json", {"key": key, "inputs": inputs, "model_sha256": digest})
            return BehaviourFit(model, "fitted", key, digest)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
