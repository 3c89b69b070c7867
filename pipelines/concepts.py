"""`write_concept_tables`: concept tables alone (mimic-code style), for every concept whose sources exist."""

from __future__ import annotations

from pathlib import Path

from dosewise.data_schemas import BadInputError, RunManifest, sha256_file, staged_output

from .sepsis.config import SepsisPipelineConfig
from .sepsis.outputs import write_concepts
from .sources.duckdb_catalog import MimicCatalog, concept_order, rules_sha256
from .sources.mimic_layout import detect_layout
from .sources.spark_catalog import SparkCatalog


def write_concept_tables(
    source: Path, out_dir: Path, only: list[str] | None = None, config: SepsisPipelineConfig | None = None
) -> RunManifest:
    """Build the concepts (`only`, or all) whose raw tables are present; write concepts/<name>.parquet.

    Concepts whose tables are missing are skipped and listed in the manifest (`extra.skipped`);
    asking for one by name that cannot be built is an error naming what is missing.
    """
    config = config or SepsisPipelineConfig()
    source, out_dir = Path(source), Path(out_dir)
    layout = detect_layout(source)
    params = {
        "cv_rate_hold_hours": config.doses.cv_rate_hold_hours,
        "gcs_under_sedation": config.scoring.gcs_under_sedation,
        "weight_fallback": config.weight.fallback,
        "weight_fallback_kg": config.weight.fallback_kg,
    }
    cat: MimicCatalog | SparkCatalog
    if config.engine == "spark":
        cat = SparkCatalog(layout, params, config.spark)
    else:
        cat = MimicCatalog(layout, params, threads=config.threads, memory_limit=config.memory_limit)
    try:
        return _write(cat, config, source, out_dir, only)
    finally:
        cat.close()


def _write(cat: MimicCatalog | SparkCatalog, config: SepsisPipelineConfig, source: Path, out_dir: Path,
           only: list[str] | None) -> RunManifest:
    """Build, write and count the concepts on either engine; the manifest last."""
    layout = cat.layout
    unknown = sorted(set(only or []) - set(cat.concepts))
    if unknown:
        raise BadInputError(
            f"Unknown concept(s): {', '.join(unknown)}.", f"Choose from: {', '.join(sorted(cat.concepts))}."
        )
    wanted = concept_order(cat.concepts, only, optional=False) if only else sorted(cat.concepts)
    buildable = [n for n in wanted if cat.available(n)]
    skipped = {n: ", ".join(cat.missing_tables(n)) for n in wanted if n not in buildable}
    if only and skipped:
        first = next(iter(skipped))
        raise BadInputError(
            f"Concept `{first}` needs raw table(s) {skipped[first]} that are not in {source}.",
            "Add the tables, or leave the concept out of --only.",
        )
    manifest = RunManifest.start("mimic_concepts", config.model_dump(mode="json"))
    with staged_output(out_dir) as work:
        order = cat.build(buildable)
        if isinstance(cat, SparkCatalog):
            for name in (n for n in order if n in buildable):
                cat.write_parquet(name, work / "concepts" / f"{name}.parquet")
            rows = {n: cat.count(n) for n in buildable}
        else:
            write_concepts(cat.con, [n for n in order if n in buildable], work / "concepts")
            rows = {n: int(cat.con.execute(f"SELECT count(*) FROM {n}").fetchall()[0][0]) for n in buildable}
        manifest.inputs = {str(p.relative_to(source)): sha256_file(p) for p in sorted(layout.files.values())}
        manifest.inputs.update(rules_sha256())
        manifest.extra = {
            "source_version": layout.version,
            "rows": rows,
            "skipped": skipped,
            "empty_optional_inputs": list(cat.stand_ins),
            "engine": config.engine,
        }
        manifest.record_outputs(work)
        manifest.write(work)
    return manifest

