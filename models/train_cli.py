"""`dosewise train`: fit an offline-RL dosing policy on a trajectories folder.

torch and d3rlpy are imported inside the command body so `dosewise --help` stays fast.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from dosewise.data_schemas import ConfigError, load_config, read_config_source
from dosewise.data_schemas.console import cli_state, print_summary
from dosewise.data_schemas.out_paths import check_out_dir

# The default without --algo/--config: the best policy on ICU-Sepsis (0.829 exact survival from 20,000
# clinician episodes, against 0.802 for the masked discrete CQL; README "Policy quality").
DEFAULT_CONFIG = "pessimistic_mbp"


class ConsoleAdapterFactory:
    """A d3rlpy `LoggerAdapterFactory` printing one metrics line per logging interval."""

    def __init__(self, n_steps: int) -> None:
        self.n_steps = n_steps

    def create(self, algo: Any, experiment_name: str, n_steps_per_epoch: int) -> ConsoleAdapter:
        return ConsoleAdapter(self.n_steps)


class ConsoleAdapter:
    """Collects one interval's metrics and prints them above the progress bar."""

    def __init__(self, n_steps: int) -> None:
        self.n_steps = n_steps
        self.row: dict[str, float] = {}

    def write_params(self, params: dict[str, Any]) -> None:
        """Parameters are printed in the final summary, not here."""

    def before_write_metric(self, epoch: int, step: int) -> None:
        self.row = {}

    def write_metric(self, epoch: int, step: int, name: str, value: float) -> None:
        self.row[name] = value

    def after_write_metric(self, epoch: int, step: int) -> None:
        from tqdm import tqdm

        text = "  ".join(f"{k.split('/')[-1]}={v:.4g}" for k, v in self.row.items())
        tqdm.write(f"step {step}/{self.n_steps}  {text}")

    def save_model(self, epoch: int, algo: Any) -> None:
        """The policy folder is written by `train_policy`."""

    def watch_model(self, epoch: int, step: int) -> None:
        """Nothing to watch on the console."""

    def close(self) -> None:
        """Nothing to close."""


def _resolve_config(algo: str | None, config: str | None, overrides: list[str]) -> Any:
    from . import config_folder
    from .config import TrainConfig
    from .training import check_algorithm_name

    if algo is not None:
        check_algorithm_name(algo)
    source = config or algo or DEFAULT_CONFIG
    if config is not None and algo is not None:
        name = read_config_source(config, [config_folder()]).get("algorithm", {}).get("name")
        if name != algo:
            raise ConfigError(
                f"`--algo {algo}` contradicts the config `{config}`, whose algorithm is {name!r}.",
                "Drop --algo, or pass a config for that algorithm (`dosewise config list`).",
            )
    return load_config(source, TrainConfig, overrides, search=[config_folder()])


def _ddp_setup(ddp: int | None, cfg: Any) -> tuple[Any, Any]:
    """`--ddp N`: in the user's process, check it and start torchrun (exits with its status);
    in a torchrun worker, join the process group and return (context, this rank's device)."""
    import sys

    from .device import resolve_device
    from .distributed import check_batch_split, check_ddp_request, init_distributed, launch, under_torchrun

    if ddp is None:
        return None, None
    device = resolve_device(cfg.device)
    if under_torchrun():
        return init_distributed(device)
    check_ddp_request(ddp, device)
    check_batch_split(cfg.batch_size, ddp)
    raise typer.Exit(launch(ddp, sys.argv[1:]))


def _train_worker(trajectories: Path, cfg: Any, folder: Path, context: Any, device: str) -> None:
    """A rank other than 0: the same training steps, no logger, no outputs."""
    from .distributed import finish
    from .training import train_policy

    try:
        train_policy(trajectories, cfg, out_dir=folder, show_progress=False, ddp=context, device=device)
    finally:
        finish(context)


def register(app: typer.Typer) -> None:
    """Add `train` to the root app."""

    @app.command("train")
    def train(
        ctx: typer.Context,
        trajectories: Annotated[Path, typer.Option("--trajectories", help="A trajectories folder.")],
        algo: Annotated[str | None, typer.Option(
            "--algo", help="pessimistic_mbp (default), dqn, double_dqn, discrete_cql, discrete_bcq, cql, iql "
            "or td3_plus_bc (picks that algorithm's shipped config).")] = None,
        steps: Annotated[int | None, typer.Option("--steps", help="Gradient steps.")] = None,
        device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = None,
        seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
        config: Annotated[str | None, typer.Option(
            "--config", help="A shipped train config name or a TOML file.")] = None,
        overrides: Annotated[list[str] | None, typer.Option(
            "--set", help="dotted.key=value override, e.g. algorithm.alpha=2.0 (repeatable).")] = None,
        out: Annotated[Path | None, typer.Option(
            "--out", help="Policy folder (default: policies/<algo>-<UTC time>).")] = None,
        track: Annotated[bool, typer.Option(
            "--track/--no-track", help="Record the run in MLflow (--tracking-uri; default ./mlflow.db)."
        )] = True,
        ddp: Annotated[int | None, typer.Option(
            "--ddp", help="Train in N processes on torch DDP through torchrun (gloo on the CPU, nccl on "
            "CUDA; at most one per GPU or core); rank 0 saves the policy and logs to MLflow.")] = None,
    ) -> None:
        """Train a dosing policy with d3rlpy on the trajectories' train split and save it."""
        from .training import train_policy

        state = cli_state(ctx)
        flags = [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
                 for k, v in (("n_steps", steps), ("device", device), ("seed", seed)) if v is not None]
        cfg = _resolve_config(algo, config, [*flags, *(overrides or [])])
        context, run_device = _ddp_setup(ddp, cfg)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        folder = check_out_dir(out or Path("policies") / f"{cfg.algorithm.name}-{stamp}",
                               {"--trajectories": trajectories})
        if context is not None and not context.is_main:  # a worker rank: train, write nothing
            _train_worker(trajectories, cfg, folder, context, run_device)
            return
        factory = None if state.quiet else ConsoleAdapterFactory(cfg.n_steps)
        tracked = None
        try:
            if track:
                from .tracking.session import train_tracked

                tracked = train_tracked(trajectories, cfg, out_dir=folder, tracking_uri=state.tracking_uri,
                                        extra_logger=factory, show_progress=not state.quiet,
                                        ddp=context, device=run_device)
                result = tracked.result
            else:
                result = train_policy(trajectories, cfg, out_dir=folder, logger_factory=factory,
                                      show_progress=not state.quiet, ddp=context, device=run_device)
        finally:
            from .distributed import finish

            finish(context)
        rows: list[tuple[str, Any]] = [
            ("policy", result.policy_dir), ("algorithm", cfg.algorithm.name), ("device", result.device),
            ("steps", cfg.n_steps), ("seconds", f"{result.seconds:.1f}"),
        ]
        if context is not None:
            rows.append(("ddp processes", f"{context.world_size} ({context.backend})"))
        if tracked is not None:
            rows += [("mlflow run", tracked.run_id), ("tracking uri", tracked.tracking_uri)]
            if state.quiet:
                typer.echo(tracked.run_id)  # for scripts: RUN=$(dosewise -q train ...)
        rows += [(k, f"{v:.4g}") for k, v in sorted(result.metrics.items())]
        print_summary("dosewise train", rows, quiet=state.quiet)
