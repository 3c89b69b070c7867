"""Config loading: TOML, named configs, `--set` precedence and scikit-learn-style errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field

from dosewise.data_schemas import ConfigError, StrictConfig, load_config, parse_override
from dosewise.data_schemas.config_files import dump_toml


class Binning(StrictConfig):
    bin_hours: int = Field(default=4, ge=1, le=24, description="Hours per bin.")


class Example(StrictConfig):
    kind: Literal["example"] = "example"
    seed: int = Field(default=0, description="Seed.")
    name: str = Field(default="x", description="Name.")
    binning: Binning = Field(default_factory=Binning, description="Binning.")


@pytest.fixture
def toml_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text('kind = "example"\nseed = 1\n[binning]\nbin_hours = 6\n')
    return path


def test_file_values_override_defaults(toml_file: Path) -> None:
    config = load_config(toml_file, Example)
    assert (config.seed, config.binning.bin_hours, config.name) == (1, 6, "x")


def test_set_overrides_file_and_later_set_wins(toml_file: Path) -> None:
    config = load_config(
        toml_file, Example, ["binning.bin_hours=2", "name=y", "binning.bin_hours=3"]
    )
    assert (config.binning.bin_hours, config.name, config.seed) == (3, "y", 1)


def test_named_config_is_found_in_search_folders(tmp_path: Path, toml_file: Path) -> None:
    config = load_config("c", Example, search=[tmp_path])
    assert config.binning.bin_hours == 6


def test_unknown_key_names_the_dotted_key(toml_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"`binning\.bin_hour` is not a known setting"):
        load_config(toml_file, Example, ["binning.bin_hour=2"])


class Grid(StrictConfig):
    name: Literal["grid"] = "grid"
    step: int = Field(default=1, ge=1, description="Step.")


class Free(StrictConfig):
    name: Literal["free"] = "free"


class Tagged(StrictConfig):
    kind: Literal["tagged"] = "tagged"
    search: Annotated[Grid | Free, Field(discriminator="name")] = Field(default_factory=Grid)


def test_error_in_a_tagged_union_names_the_key_the_user_wrote(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('kind = "tagged"\n[search]\nname = "grid"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, Tagged, ["search.stpe=2"])
    assert "`search.stpe` is not a known setting. Got 2." in info.value.message
    with pytest.raises(ConfigError) as info:
        load_config(path, Tagged, ["search.step=0"])
    assert "`search.step` must be greater than or equal to 1. Got 0." in info.value.message


def test_out_of_range_value_says_allowed_and_given(toml_file: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(toml_file, Example, ["binning.bin_hours=0"])
    assert "`binning.bin_hours` must be greater than or equal to 1. Got 0." in info.value.message
    assert info.value.exit_code == 2


def test_wrong_type_is_reported(toml_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"`seed` must be a valid integer.*Got 'abc'"):
        load_config(toml_file, Example, ["seed=abc"])


def test_missing_name_lists_shipped_configs(tmp_path: Path, toml_file: Path) -> None:
    with pytest.raises(ConfigError, match="shipped configs: c") as info:
        load_config("nope", Example, search=[tmp_path])
    assert info.value.exit_code == 2


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", Example)


def test_bad_override_syntax() -> None:
    with pytest.raises(ConfigError, match=r"dotted\.key=value"):
        parse_override("novalue")


def test_dump_toml_round_trips() -> None:
    import tomllib

    data = Example(seed=5).model_dump(mode="json")
    assert tomllib.loads(dump_toml(data)) == data
