"""Shared steps of the registry tests: a tiny real training config and fresh-process prediction."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

FEATURES = [f"cluster_centre_{i:02d}" for i in range(47)]

PREDICT_SCRIPT = textwrap.dedent(
    """
    import sys
    import mlflow
    import pandas as pd

    model = mlflow.pyfunc.load_model(sys.argv[1])
    model.predict(pd.read_parquet(sys.argv[2])).to_parquet(sys.argv[3])
    """
)


def tiny_train_config():  # type: ignore[no-untyped-def]
    """A discrete CQL run of a few hundred transitions' worth of steps (seconds on CPU)."""
    from dosewise.models import TrainConfig

    return TrainConfig.model_validate({
        "n_steps": 100, "log_every": 25, "batch_size": 64, "seed": 0,
        "algorithm": {"name": "discrete_cql", "hidden_units": [32, 32]},
    })


def sample_states(trajectories: Path, n: int = 40) -> pd.DataFrame:
    """The first `n` rows of state features (float64) from a trajectories folder."""
    return pd.read_parquet(trajectories / "trajectories.parquet", columns=FEATURES).head(n)


def predict_in_fresh_process(model_uri: str, states: pd.DataFrame, work: Path,
                             tracking_uri: str | None, cwd: Path | None = None) -> pd.DataFrame:
    """Load `model_uri` with `mlflow.pyfunc.load_model` in a new Python process and predict
    (without `tracking_uri` the process finds the default store of its working folder `cwd`)."""
    work.mkdir(parents=True, exist_ok=True)
    script, inputs, outputs = work / "predict.py", work / "states.parquet", work / "out.parquet"
    script.write_text(PREDICT_SCRIPT)
    states.to_parquet(inputs)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    done = subprocess.run([sys.executable, str(script), model_uri, str(inputs), str(outputs)],
                          cwd=cwd or work, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.read_parquet(outputs)
