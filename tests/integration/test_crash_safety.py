"""Output folders survive a kill at any write: the folder is the last complete run or the new one.

A driver process imports Dosewise once, then forks one child per kill point. The child counts every
rename (`os.replace`, `os.rename`, the folder swap) and every tree removal, and SIGKILLs itself
just before the k-th one (or after the last), so no `finally` or `except` runs, as with `kill -9`.
After each kill the driver reads the folder as a reader would; the test checks what it saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dosewise.data_schemas import BadInputError, IncompleteOutput, RunManifest, staged_output

from ..conftest import REPO_ROOT
from ..pipelines.mimic_builders import septic_stay_tables, write_mimic4

pytestmark = pytest.mark.slow

DRIVER = r'''
import json, os, shutil, signal, sys
from pathlib import Path

spec = json.loads(sys.argv[1])
import dosewise.data_schemas.folders as folders
from dosewise.data_schemas import RunManifest

if spec["kind"] == "etl":
    from dosewise.pipelines import SepsisPipelineConfig, run_sepsis_pipeline

    def job(seed):
        cfg = SepsisPipelineConfig(seed=seed, threads=1, output={"pseudonymize_ids": False})
        run_sepsis_pipeline(cfg, spec["source"], spec["out"], show_progress=False)
else:
    import d3rlpy.logging, torch._inductor  # imported once here, not in every child (13 s each)
    from dosewise.models import TrainConfig, train_policy

    def job(seed):
        cfg = TrainConfig.model_validate({"n_steps": 4, "log_every": 2, "batch_size": 8, "device": "cpu",
                                          "seed": seed, "threads": 1,
                                          "algorithm": {"name": "discrete_cql", "hidden_units": [8]}})
        train_policy(Path(spec["source"]), cfg, out_dir=Path(spec["out"]), show_progress=False)

def run(seed, kill_at):
    """Run `job` in a child; SIGKILL it at point `kill_at` (0: never). Returns (status, points)."""
    counter = Path(spec["out"] + ".points")
    pid = os.fork()
    if pid == 0:
        n = [0]
        def point():
            n[0] += 1
            if n[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        def wrap(owner, name):
            real = getattr(owner, name)
            def patched(*args, **kwargs):
                point()  # a kill just after call k is a kill just before call k + 1
                return real(*args, **kwargs)
            setattr(owner, name, patched)
        for owner, name in ((os, "replace"), (os, "rename"), (folders, "_exchange"), (shutil, "rmtree")):
            wrap(owner, name)
        job(seed)
        point()  # and one after the last
        counter.write_text(str(n[0]))
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return status, int(counter.read_text()) if kill_at == 0 else None

def seen():
    """What a reader finds: the run's seed when the folder is whole and of one run, else the error."""
    try:
        manifest = RunManifest.read(Path(spec["out"]))
        manifest.verify_outputs(Path(spec["out"]))
        return manifest.seed
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"

assert run(1, 0)[0] == 0
_, points = run(2, 0)
assert run(1, 0)[0] == 0
results = []
for k in range(1, points + 1, spec.get("every", 1)):
    status, _ = run(2, k)
    results.append({"k": k, "killed": os.WIFSIGNALED(status), "seen": seen(),
                    "staging_left": sorted(p.name for p in Path(spec["out"]).parent.glob(".*staging*"))})
    if results[-1]["seen"] == 2:
        assert run(1, 0)[0] == 0
status, _ = run(2, 0)  # a clean rerun after all those kills: whole, and no leftovers
results.append({"k": 0, "killed": False, "seen": seen(),
                "staging_left": sorted(p.name for p in Path(spec["out"]).parent.glob(".*staging*"))})
print(json.dumps({"points": points, "results": results}))
'''


def _drive(spec: dict[str, object]) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(spec)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=900, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check(report: dict[str, object], min_points: int) -> None:
    results = report["results"]
    assert isinstance(results, list) and int(str(report["points"])) >= min_points
    killed = [r for r in results if r["killed"]]
    assert len(killed) >= min_points  # every point up to the last really killed the run
    for r in results:
        assert r["seen"] in (1, 2), r  # never missing, never mixed: the old run or the new one
    assert {r["seen"] for r in killed} == {1, 2}  # kills before the swap keep the old run
    assert results[-1] == {"k": 0, "killed": False, "seen": 2, "staging_left": []}


def test_etl_killed_at_every_write_leaves_old_or_new_run(tmp_path: Path) -> None:
    source = write_mimic4(tmp_path / "src", septic_stay_tables())
    report = _drive({"kind": "etl", "source": str(source), "out": str(tmp_path / "out")})
    _check(report, min_points=12)


def test_train_killed_at_every_write_leaves_old_or_new_policy(
    tmp_path: Path, icu_dir_small: Path
) -> None:
    report = _drive({"kind": "train", "source": str(icu_dir_small), "out": str(tmp_path / "policy")})
    _check(report, min_points=5)


@pytest.fixture
def icu_dir_small(tmp_path: Path) -> Path:
    from dosewise.pipelines import write_icu_sepsis_episodes

    write_icu_sepsis_episodes(tmp_path / "icu", 60, seed=0)
    return tmp_path / "icu"


def test_mixed_policy_folder_is_refused(tmp_path: Path, icu_dir_small: Path) -> None:
    """The issue's case: an old manifest beside a newer `model.pt` (e.g. copied in by hand)."""
    from dosewise.models import TrainConfig, load_policy, train_policy

    cfg = TrainConfig.model_validate({"n_steps": 4, "log_every": 2, "batch_size": 8, "device": "cpu",
                                      "algorithm": {"name": "discrete_cql", "hidden_units": [8]}})
    train_policy(icu_dir_small, cfg, out_dir=tmp_path / "a", show_progress=False)
    train_policy(icu_dir_small, cfg.model_copy(update={"seed": 5}), out_dir=tmp_path / "b",
                 show_progress=False)
    load_policy(tmp_path / "a")
    (tmp_path / "a" / "model.pt").write_bytes((tmp_path / "b" / "model.pt").read_bytes())
    with pytest.raises(IncompleteOutput, match=r"model\.pt does not match the hash.*mixes files"):
        load_policy(tmp_path / "a")


def test_failed_rerun_keeps_the_last_good_run(tmp_path: Path) -> None:
    """Item 12: a rerun whose input cannot even be parsed leaves the complete run as it was."""
    from dosewise.pipelines import SepsisPipelineConfig, run_sepsis_pipeline

    cfg = SepsisPipelineConfig(threads=1, output={"pseudonymize_ids": False})
    source = write_mimic4(tmp_path / "src", septic_stay_tables())
    run_sepsis_pipeline(cfg, source, tmp_path / "out", show_progress=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    (source / "icu" / "chartevents.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(BadInputError):
        run_sepsis_pipeline(cfg, source, tmp_path / "out", show_progress=False)
    after = {p.name: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == before
    RunManifest.read(tmp_path / "out").verify_outputs(tmp_path / "out")
    assert not list(tmp_path.glob(".out.staging-*"))


def test_foreign_folder_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("years of work")
    with pytest.raises(BadInputError, match=r"must be empty or an earlier Dosewise output.*thesis\.tex"), \
            staged_output(tmp_path / "home"):
        pass
    assert (tmp_path / "home" / "thesis.tex").read_text() == "years of work"


def test_raising_block_keeps_old_folder_and_cleans_staging(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with staged_output(out) as work:
        (work / "a.txt").write_text("old")
        (work / "manifest.json").write_text("{}")
    with pytest.raises(RuntimeError), staged_output(out) as work:
        (work / "a.txt").write_text("new")
        raise RuntimeError("crash")
    assert (out / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
