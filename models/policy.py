"""The `Policy` protocol, the trained policy behind it, and its folder on disk.

A policy folder holds `policy.json` (algorithm, features, scaler, action bins, per-bin doses,
dose bounds, config, data manifest hash), `model.pt` (d3rlpy's torch state, read back with
`weights_only` loading, no pickled code), `mask.npz` when masks are on, `metrics.csv`, and
`manifest.json` written last. Loading rebuilds the d3rlpy algorithm from the saved `TrainConfig`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch

from dosewise.data_schemas import BadInputError, DosewiseError, RunManifest, write_bytes_atomic

from .config import TrainConfig
from .datasets import StateScaler
from .masks import AdmissibleActions, candidates_module, mask_module
from .networks import ContinuousHead, PolicyNetwork, build_policy_network

POLICY_JSON = "policy.json"
MODEL_FILE = "model.pt"
MASK_FILE = "mask.npz"
_CHUNK = 65536


@runtime_checkable
class Policy(Protocol):
    """What OPE, the registry and the app need from any dosing policy."""

    name: str
    feature_names: list[str]
    n_actions: int
    action_space: Literal["discrete", "continuous"]
    dose_columns: list[str]

    def q_values(self, states: pd.DataFrame) -> np.ndarray: ...
    def recommend(self, states: pd.DataFrame) -> np.ndarray: ...
    def recommend_doses(self, states: pd.DataFrame) -> pd.DataFrame: ...
    def action_probabilities(self, states: pd.DataFrame, epsilon: float = 0.0) -> np.ndarray: ...


class TrainedPolicy:
    """A d3rlpy algorithm wrapped as a `Policy`: inputs checked by name, masks applied."""

    def __init__(self, algo: Any, meta: dict[str, Any], mask: AdmissibleActions | None) -> None:
        self.algo = algo
        self.meta = meta
        self.mask = mask
        self.name: str = meta["name"]
        self.feature_names: list[str] = list(meta["feature_names"])
        self.n_actions: int = int(meta["n_actions"])
        self.action_space: Literal["discrete", "continuous"] = meta["action_space"]
        self.dose_columns: list[str] = list(meta["dose_columns"])
        self.representative_doses = np.asarray(meta["representative_doses"], dtype=np.float64)
        scaler = StateScaler.from_dict(meta["scaler"])
        device = algo.impl.device
        module = mask_module(mask, device) if mask is not None else None
        candidates = candidates_module(mask, device) if mask is not None and mask.doses is not None else None
        by_q = meta.get("config", {}).get("mask", {}).get("dose_choice") == "best_q"
        self.network: PolicyNetwork = build_policy_network(
            algo, scaler.mean, scaler.std, module, meta.get("continuous"), meta.get("bcq_flexibility"),
            candidates, by_q,
        )

    def __repr__(self) -> str:
        return f"TrainedPolicy({self.name}, {len(self.feature_names)} features, {self.n_actions} actions)"

    def _inputs(self, states: pd.DataFrame) -> np.ndarray:
        missing = [f for f in self.feature_names if f not in states.columns]
        if missing:
            raise BadInputError(
                f"States lack the policy's feature columns {missing[:5]}{'...' if len(missing) > 5 else ''}.",
                "Pass a frame with every column in policy.feature_names (extra columns are ignored).",
            )
        try:
            values = states[self.feature_names].to_numpy(np.float64)
        except (TypeError, ValueError) as exc:
            raise BadInputError(f"State features must be numeric: {exc}.", "Convert them to floats.") from exc
        if not np.isfinite(values).all():
            bad = [f for f, ok in zip(self.feature_names, np.isfinite(values).all(0), strict=True) if not ok]
            raise BadInputError(f"States hold NaN or inf in {bad[:5]}.", "Impute or drop those rows first.")
        out: np.ndarray = values.astype(np.float32)
        return out

    def _run(self, states: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        x = self._inputs(states)
        parts: list[tuple[np.ndarray, ...]] = []
        device = self.algo.impl.device
        with torch.no_grad():
            for start in range(0, max(len(x), 1), _CHUNK):
                batch = torch.as_tensor(x[start : start + _CHUNK], device=device)
                parts.append(tuple(t.cpu().numpy() for t in self.network.act(batch)))
        a, q, ok, d = (np.concatenate([p[i] for p in parts]) for i in range(4))
        return a.astype(np.int64), q.astype(np.float64), ok.astype(bool), d.astype(np.float64)

    def q_values(self, states: pd.DataFrame) -> np.ndarray:
        """(n, n_actions) Q-values; continuous policies: Q(s, representative dose of each bin)."""
        return self._run(states)[1]

    def admissible(self, states: pd.DataFrame) -> np.ndarray:
        """(n, n_actions) bool: actions the policy may recommend in each state."""
        return self._run(states)[2]

    def recommend(self, states: pd.DataFrame) -> np.ndarray:
        """(n,) greedy admissible action indices."""
        return self._run(states)[0]

    def recommend_doses(self, states: pd.DataFrame) -> pd.DataFrame:
        """Recommended doses in units: the actor's doses or, with `mask.dose_candidates`, the best
        logged candidate dose (continuous, unless masked into another bin), or the train split's
        median dose of the recommended bin (discrete)."""
        action, _, _, doses = self._run(states)
        out = self.representative_doses[action] if self.dose_columns else np.zeros((len(action), 0))
        head = self.network.head
        if isinstance(head, ContinuousHead):
            keep = head.bins(torch.as_tensor(doses, dtype=torch.float32)).numpy() == action
            out = np.where(keep[:, None], doses, out)
        return pd.DataFrame(out, columns=self.dose_columns, index=states.index)

    def action_probabilities(self, states: pd.DataFrame, epsilon: float = 0.0) -> np.ndarray:
        """(n, n_actions) epsilon-greedy probabilities; exploration mass only on allowed actions."""
        if not 0.0 <= epsilon <= 1.0:
            raise BadInputError(f"`epsilon` must be in [0, 1]. Got {epsilon}.", "Use e.g. 0.01 or 0.")
        action, _, allowed, _ = self._run(states)
        probs: np.ndarray = epsilon * allowed / allowed.sum(axis=1, keepdims=True)
        probs[np.arange(len(action)), action] += 1.0 - epsilon
        return probs

    def export_torchscript(self, path: Path) -> Path:
        """Save the greedy policy (raw features float32 (n, d) -> action int64) as TorchScript."""
        example = torch.zeros((2, len(self.feature_names)), device=self.algo.impl.device)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.13 deprecates TorchScript
            traced = torch.jit.trace(self.network, example, check_trace=False)  # type: ignore[no-untyped-call]
            return write_bytes_atomic(Path(path), lambda handle: torch.jit.save(traced, handle))

    def export_onnx(self, path: Path) -> Path:
        """Save the greedy policy as ONNX (input `features` float32 (batch, d), output `action`)."""
        net = self.network.cpu()
        example = torch.zeros((2, len(self.feature_names)))
        batch = torch.export.Dim("batch", min=1)
        program = torch.onnx.export(
            net, (example,), dynamo=True, input_names=["features"], output_names=["action"],
            dynamic_shapes={"x": {0: batch}}, verbose=False,
        )
        self.network.to(self.algo.impl.device)
        if program is None:
            raise DosewiseError("torch.onnx.export returned no program.", "Re-run with --debug.")
        data = program.model_proto.SerializeToString()
        return write_bytes_atomic(Path(path), lambda handle: handle.write(data))


def save_policy(folder: Path, policy: TrainedPolicy) -> None:
    """Write the policy's weights, mask and `policy.json` into `folder` (manifest is the caller's)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(folder / MODEL_FILE, policy.algo.impl.save_model)
    if policy.mask is not None:
        write_bytes_atomic(folder / MASK_FILE, policy.mask.write)
    text = json.dumps(policy.meta, indent=2, sort_keys=True) + "\n"
    write_bytes_atomic(folder / POLICY_JSON, lambda handle: handle.write(text.encode()))


def build_algo(
    config: TrainConfig, n_features: int, action_size: int, device: str, *, enable_ddp: bool = False,
    admissible: Any = None, fused_loss: bool = True,
) -> Any:
    """A d3rlpy algorithm with its networks created (weights from the torch seed).

    With `config.fuse_updates` (and the vectorised sampler) Adam is torch's fused kernel and, where it
    fits, the algorithm is `fused_updates`' fused-loss subclass; `fused_loss = False` keeps d3rlpy's
    loss with the fused Adam (the throughput bench's comparison).

    `enable_ddp` (inside a torchrun process group) has d3rlpy wrap the networks in DDP.
    `admissible` (a `masks.mask_module`) makes the bootstrap target pick only allowed actions: the
    algorithm is then the masked subclass from `masked_algos` (same networks and checkpoint format).

    With `config.compile` on CUDA, d3rlpy's own `compile_graph` (CUDA graphs + torch.compile) is on.
    """
    import dataclasses

    from .device import quiet_d3rlpy

    quiet_d3rlpy()
    d3_config = config.algorithm.to_d3rlpy(config.batch_size)
    if config.fuse_updates and config.sampler == "vectorised":
        from .optimizers import with_fused_adam

        d3_config = with_fused_adam(d3_config)
    if config.compile and device.startswith("cuda"):
        d3_config = dataclasses.replace(d3_config, compile_graph=True)
    algo = None
    if fused_loss and config.fuse_updates and config.sampler == "vectorised":
        from .fused_updates import fused_algorithm

        algo = fused_algorithm(d3_config, device, enable_ddp, admissible)
    if algo is None and admissible is not None:
        from .masked_algos import masked_algorithm

        algo = masked_algorithm(d3_config, device, enable_ddp, admissible)
    elif algo is None:
        algo = d3_config.create(device=device, enable_ddp=enable_ddp)
    algo.create_impl((n_features,), action_size)
    return algo


def load_policy(path: Path | str, device: str = "cpu") -> TrainedPolicy:
    """Load a policy folder written by `train_policy`: it must be complete and of one run.

    Every file the manifest lists must still have its recorded SHA-256, so a folder that mixes two
    runs (an old manifest beside a new `model.pt`) is refused rather than loaded.
    """
    from .device import resolve_device

    folder = Path(path)
    RunManifest.read(folder).verify_outputs(folder)  # IncompleteOutput: unfinished or mixed folder
    meta_path = folder / POLICY_JSON
    if not meta_path.is_file():
        raise BadInputError(f"{folder} has no {POLICY_JSON}; it is not a Dosewise policy folder.",
                            "Pass the --out folder of `dosewise train`.")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("name") == "pessimistic_mbp":  # a Q-table, no d3rlpy network (planning.py)
        from .planning import load_planned_policy

        return load_planned_policy(folder, meta)
    config = TrainConfig.model_validate(meta["config"]).model_copy(update={"compile": False})
    action_size = meta["n_actions"] if meta["action_space"] == "discrete" else len(meta["dose_columns"])
    algo = build_algo(config, len(meta["feature_names"]), action_size, resolve_device(device))
    with open(folder / MODEL_FILE, "rb") as handle:
        algo.impl.load_model(handle)
    mask = AdmissibleActions.load(folder / MASK_FILE) if (folder / MASK_FILE).is_file() else None
    return TrainedPolicy(algo, meta, mask)
