"""`RunManifest`: the provenance written last into every output folder.

It records the resolved config and its hash, the hashes of every input and output file, the
code version, per-stage row and quarantine counts and timings, so any output can be traced back
to exactly what made it (MEDS' `.done` plus Hydra's saved config, in one file).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import BadInputError, IncompleteOutput
from .io import MANIFEST_NAME, require_complete, sha256_file, write_json_atomic
from .trajectory import TrajectoryDatasetInfo


def canonical_json(payload: Any) -> str:
    """JSON with sorted keys and no whitespace: the form that config hashes are taken over."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def config_sha256(config: dict[str, Any]) -> str:
    """SHA-256 of a resolved config's canonical JSON."""
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


class CodeVersion(BaseModel):
    """Which code made an output: git commit, uncommitted changes, package version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    git_sha: str | None = Field(description="Commit of the source tree, None outside a git checkout.")
    dirty: bool = Field(description="True when the tree had uncommitted changes.")
    package_version: str = Field(description="Installed `dosewise` distribution version.")


def _source_root() -> Path:
    """The folder that holds this layer's source (the repository in an editable install)."""
    return Path(__file__).resolve().parent.parent


def current_code_version() -> CodeVersion:
    """Read the code version from git (when the source is a checkout) and package metadata."""
    try:
        package_version = version("dosewise")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        package_version = "0+unknown"
    root = _source_root()
    git_sha: str | None = None
    dirty = False
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )
        if out.returncode == 0:
            git_sha = out.stdout.strip()
            status = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True, text=True, timeout=10, check=False,
            )
            dirty = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        git_sha = None
    return CodeVersion(git_sha=git_sha, dirty=dirty, package_version=package_version)


class StageRecord(BaseModel):
    """Row counts and timing of one pipeline stage; rows_in == rows_out + rows_quarantined
    unless the stage changes the grain (then `note` says how)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    rows_in: int = Field(ge=0)
    rows_out: int = Field(ge=0)
    rows_quarantined: int = Field(default=0, ge=0)
    quarantined_by_rule: dict[str, int] = Field(default_factory=dict)
    seconds: float = Field(ge=0)
    note: str = ""


class FunnelStep(BaseModel):
    """Count remaining after one named inclusion or exclusion rule."""

    model_config = ConfigDict(extra="forbid")

    rule: str
    description: str
    remaining: int = Field(ge=0)


class RunManifest(BaseModel):
    """Everything needed to trust and reproduce one output folder."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="What the folder holds, e.g. `sepsis_trajectories`.")
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    config: dict[str, Any] = Field(description="The resolved config, as validated.")
    config_sha256: str
    inputs: dict[str, str] = Field(default_factory=dict, description="Input file -> SHA-256.")
    outputs: dict[str, str] = Field(default_factory=dict, description="Output file -> SHA-256.")
    code_version: CodeVersion
    seed: int | None = None
    stages: list[StageRecord] = Field(default_factory=list)
    funnel: list[FunnelStep] = Field(default_factory=list)
    dataset: TrajectoryDatasetInfo | None = Field(
        default=None, description="Set for trajectory folders: the contract learners read."
    )
    extra: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def start(cls, kind: str, config: dict[str, Any], **fields: Any) -> RunManifest:
        """Begin a manifest for `config`, stamping its hash and the current code version."""
        return cls(
            kind=kind,
            config=config,
            config_sha256=config_sha256(config),
            code_version=current_code_version(),
            **fields,
        )

    def record_outputs(self, folder: Path) -> None:
        """Hash every file under `folder` (except the manifest) into `outputs`."""
        folder = Path(folder)
        self.outputs = {
            str(p.relative_to(folder)): sha256_file(p)
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST_NAME and not p.name.startswith(".")
        }

    def write(self, folder: Path) -> Path:
        """Write `manifest.json` into `folder`; call this last, after every other output."""
        return write_json_atomic(Path(folder) / MANIFEST_NAME, self.model_dump(mode="json"))

    def verify_outputs(self, folder: Path, names: list[str] | None = None) -> None:
        """Check that each output file (or each of `names`) still has the hash recorded here.

        A file that is missing or differs means the folder mixes two runs (or was edited by hand).
        """
        folder = Path(folder)
        for name in names if names is not None else sorted(self.outputs):
            path = folder / name
            recorded = self.outputs.get(name)
            if recorded is None or not path.is_file() or sha256_file(path) != recorded:
                state = "is not listed in" if recorded is None else (
                    "is missing but listed in" if not path.is_file() else "does not match the hash in")
                raise IncompleteOutput(
                    f"{path} {state} {folder / MANIFEST_NAME}: the folder mixes files of different runs.",
                    "Re-run the command that wrote this folder; do not copy files between runs.",
                )

    @classmethod
    def read(cls, folder: Path) -> RunManifest:
        """Read and validate the manifest of a finished output folder."""
        path = require_complete(Path(folder))
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BadInputError(
                f"{path} is not a valid Dosewise manifest: {exc}",
                "Re-run the command that wrote this folder with this version of Dosewise.",
            ) from exc
