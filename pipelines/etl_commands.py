"""Bodies of the `dosewise etl ...` commands (registered on `etl_app` in cli.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from dosewise.data_schemas import BadInputError, load_config
from dosewise.data_schemas.console import cli_state, print_summary, print_table, print_warning

EngineOption = Annotated[str | None, typer.Option(
    help="duckdb (in-process, the default) or spark (pyspark; the SQL is transpiled by sqlglot).")]
SparkMasterOption = Annotated[str | None, typer.Option(
    "--spark-master", envvar="DOSEWISE_SPARK_MASTER",
    help="local[N] (default local[2]), spark://HOST:PORT, k8s://... or yarn.")]
SparkRemoteOption = Annotated[str | None, typer.Option(
    "--spark-remote", envvar="DOSEWISE_SPARK_REMOTE",
    help="Spark Connect / Databricks Connect URL (sc://HOST:PORT) instead of a master.")]


def engine_overrides(engine: str | None, spark_master: str | None, spark_remote: str | None) -> list[str]:
    """`--set` overrides for `--engine`, `--spark-master` and `--spark-remote` (absent: the config's)."""
    if engine is not None and engine not in ("duckdb", "spark"):
        raise BadInputError(f"`--engine` must be duckdb or spark. Got {engine!r}.",
                            "Use --engine duckdb (default) or --engine spark.")
    pairs = (("engine", engine), ("spark.master", spark_master), ("spark.remote", spark_remote))
    return [f"{key}={json.dumps(value)}" for key, value in pairs if value]


def etl_sepsis(
    ctx: typer.Context,
    source: Annotated[
        Path, typer.Option(help="MIMIC-IV folder (hosp/, icu/) or MIMIC-III folder (*.csv.gz).")
    ],
    out: Annotated[Path, typer.Option(help="Output folder for trajectories, cohort, splits, quarantine.")],
    config: Annotated[
        str | None,
        typer.Option(help="Shipped config name or TOML path (default: sepsis_mimic4, version detected)."),
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override: dotted.key=value.")] = None,
    keep_concepts: Annotated[
        bool, typer.Option("--keep-concepts", help="Also write out/concepts/*.parquet.")
    ] = False,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    spark_remote: SparkRemoteOption = None,
) -> None:
    """Raw MIMIC -> Sepsis-3 trajectories in fixed-length bins (manifest written last).

    `--engine spark` runs every stage on Spark (`local[2]` unless `--spark-master`/`--spark-remote`
    or the config's `spark.*` say otherwise); the outputs and the manifest are the same files."""
    from . import SepsisPipelineConfig, config_folder, run_sepsis_pipeline

    overrides = list(set_ or [])
    if config is None:
        config = "sepsis_mimic4"
        overrides.insert(0, "source_version=auto")
    if keep_concepts:
        overrides.append("output.keep_concepts=true")
    overrides += engine_overrides(engine, spark_master, spark_remote)
    cfg = load_config(config, SepsisPipelineConfig, overrides, search=[config_folder()])
    quiet = cli_state(ctx).quiet
    start = time.perf_counter()
    manifest = run_sepsis_pipeline(cfg, source, out, show_progress=not quiet)
    seconds = time.perf_counter() - start
    for warning in manifest.extra.get("warnings", []):
        print_warning(warning)  # shown even with --quiet: it changes what the output may be used for
    if quiet:
        return
    info = manifest.dataset
    stages = {s.name: s for s in manifest.stages}
    rows = [
        ("source", f"{source} ({manifest.extra['source_version']})"),
        ("engine", cfg.engine if cfg.engine == "duckdb"
         else f"spark ({cfg.spark.remote or cfg.spark.master})"),
        ("cohort (episodes)", manifest.extra["n_episodes"]),
        ("bins (stay x step rows)", stages["trajectories"].rows_out),
        ("bin hours", cfg.binning.bin_hours),
        ("state variables", len(info.state_columns) if info else 0),
        (
            "actions",
            f"{info.n_actions if info else 0} ({' x '.join(map(str, info.action_grid)) if info else ''})",
        ),
        ("quarantined rows", sum(s.rows_quarantined for s in manifest.stages)),
        ("seconds", f"{seconds:.1f}"),
        ("output", out),
    ]
    print_summary("Sepsis ETL", rows)
    print_table("Inclusion funnel", ["rule", "remaining"], [(f.rule, f.remaining) for f in manifest.funnel])
    q_rows = [(s.name, rule, n) for s in manifest.stages for rule, n in s.quarantined_by_rule.items()]
    if q_rows:
        print_table("Quarantined rows by rule", ["stage", "rule", "rows"], q_rows)


def etl_chemo(
    ctx: typer.Context,
    source: Annotated[
        Path, typer.Option(help="Registry folder (registry.csv[.gz]|.parquet) or OMOP CDM folder.")
    ],
    out: Annotated[Path, typer.Option(help="Output folder for trajectories, cohort, splits, quarantine.")],
    config: Annotated[
        str | None, typer.Option(help="chemo_registry, chemo_omop or a TOML path (default: detected).")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override: dotted.key=value.")] = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    spark_remote: SparkRemoteOption = None,
) -> None:
    """Oncology records -> chemotherapy cycle trajectories (RDI action, manifest written last).

    `--engine spark` runs the stages (OMOP CDM, registry or trial records) on Spark (`local[2]` unless
    `--spark-master`/`--spark-remote` or the config's `spark.*` say otherwise); the outputs and the
    manifest are the same files."""
    from . import ChemoPipelineConfig, config_folder, run_chemo_pipeline

    overrides = list(set_ or [])
    if config is None:
        config = "chemo_registry"
        overrides.insert(0, "input.format=auto")
    overrides += engine_overrides(engine, spark_master, spark_remote)
    cfg = load_config(config, ChemoPipelineConfig, overrides, search=[config_folder()])
    quiet = cli_state(ctx).quiet
    start = time.perf_counter()
    manifest = run_chemo_pipeline(cfg, source, out, show_progress=not quiet)
    if quiet:
        return
    info = manifest.dataset
    stages = {s.name: s for s in manifest.stages}
    trial = manifest.extra.get("design") == "trial"
    print_summary("Chemotherapy ETL", [
        ("source", f"{source} ({manifest.extra['source_format']})"),
        ("engine", cfg.engine if cfg.engine == "duckdb"
         else f"spark ({cfg.spark.remote or cfg.spark.master})"),
        ("patients (episodes)", manifest.extra["n_episodes"]),
        ("decision steps" if trial else "cycles (steps)", stages["trajectories"].rows_out),
        ("state variables", len(info.state_columns) if info else 0),
        ("actions", " then ".join("/".join(x) for x in manifest.extra["stage_action_labels"]) if trial
         else f"rdi_fraction (continuous) and {info.n_actions if info else 0} RDI bins"),
        ("behaviour probabilities", manifest.extra["behaviour_prob"]),
        ("quarantined rows", sum(s.rows_quarantined for s in manifest.stages)),
        ("seconds", f"{time.perf_counter() - start:.1f}"),
        ("output", out),
    ])
    if trial:
        observed = manifest.extra["observed_by_arm"]["all"]
        print_table(f"Observed outcome by arm ({manifest.extra['endpoint']} at day "
                    f"{manifest.extra['horizon_days']}, Kaplan-Meier, all patients)",
                    ["arm", "patients", "events", "censored before", "KM", "95 % CI"],
                    [(arm, o["n"], o["events"], o["censored_before"], f"{o['km']:.3f}",
                      f"[{o['ci_low']:.3f}, {o['ci_high']:.3f}]") for arm, o in observed.items()])
    q_rows = [(s.name, rule, n) for s in manifest.stages for rule, n in s.quarantined_by_rule.items()]
    if q_rows:
        print_table("Quarantined rows by rule", ["stage", "rule", "rows"], q_rows)


def etl_check_sources(
    ctx: typer.Context,
    source: Annotated[Path, typer.Option(help="Folder to inspect.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON object on stdout.")
    ] = False,
) -> None:
    """Detect MIMIC-III/IV, OMOP CDM oncology or a flat registry; list found and missing tables.

    The report is the command's answer, so `--quiet` does not silence it (it has no progress to hide).
    """
    from dosewise.data_schemas import MissingSourceTable

    from .chemo.sources import oncology_source_report
    from .sources.check import check_sources, require_care_system_inputs
    from .sources.mimic_layout import require_tables

    fmt, rows, missing = oncology_source_report(source)
    if fmt is not None:
        label = {"omop": "OMOP CDM v5.4 (oncology extension)", "registry": "Flat cycle-level registry",
                 "trial": "Trial records (flat registry, design = trial)"}[fmt]
        command = (" or ".join(f"--config {t}" for t, _, _ in rows) if fmt == "trial"
                   else f"--config chemo_{fmt}")
        if as_json:
            typer.echo(json.dumps({
                "version": fmt, "label": label,
                "tables": [{"table": t, "file": None if f == "missing" else f, "needed_for": why}
                           for t, f, why in rows],
                "missing_tables": missing,
            }, indent=2))
        else:
            print_table(f"{label} tables in {source}", ["table", "file", "needed for"], rows)
            print_summary("Sources", [("format", label), ("missing tables", ", ".join(missing) or "none"),
                                      ("ETL", f"dosewise etl chemo {command}")])
        if missing:
            raise MissingSourceTable(f"{source} lacks the OMOP table(s) {', '.join(missing)}.",
                                     "Export them with OMOP's lower-case file names.")
        return

    report = check_sources(source, strict=False)
    if as_json:
        typer.echo(json.dumps({
            "version": report.layout.version,
            "label": report.layout.label,
            "tables": [{"table": t, "file": None if f == "MISSING" else f, "needed_for": why}
                       for t, f, why in report.tables],
            "care_systems": report.care_systems,
            "missing_tables": list(report.layout.missing),
        }, indent=2))
    else:
        print_table(
            f"{report.layout.label} tables in {source}", ["table", "file", "needed for"], report.tables
        )
        coverage = ", ".join(f"{k}: {v} stays" for k, v in report.care_systems.items()) or "unknown"
        print_summary(
            "Sources",
            [
                ("version", report.layout.label),
                ("care systems", coverage),
                ("missing tables", ", ".join(report.layout.missing) or "none"),
            ],
        )
    require_tables(report.layout)
    require_care_system_inputs(report.layout, report.care_systems)


def etl_concepts(
    ctx: typer.Context,
    source: Annotated[Path, typer.Option(help="MIMIC-IV or MIMIC-III folder.")],
    out: Annotated[Path, typer.Option(help="Output folder; tables go to out/concepts/<concept>.parquet.")],
    only: Annotated[
        str | None, typer.Option(help="Comma-separated concept names (default: all buildable).")
    ] = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
    spark_remote: SparkRemoteOption = None,
) -> None:
    """Compute concept tables alone (keyed by source ids), for every concept whose tables are present."""
    from dosewise.data_schemas.out_paths import check_out_dir

    from .concepts import write_concept_tables
    from .sepsis.config import SepsisPipelineConfig

    check_out_dir(out, {"--source": source})
    engine_overrides(engine, spark_master, spark_remote)  # checks --engine
    spark = {k: v for k, v in (("master", spark_master), ("remote", spark_remote)) if v}
    config = SepsisPipelineConfig.model_validate({"engine": engine or "duckdb", "spark": spark})
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    manifest = write_concept_tables(source, out, names, config)
    if cli_state(ctx).quiet:
        return
    print_table("Concept tables", ["concept", "rows"], sorted(manifest.extra["rows"].items()))
    if manifest.extra["skipped"]:
        print_table(
            "Skipped (source tables missing)", ["concept", "needs"], sorted(manifest.extra["skipped"].items())
        )
