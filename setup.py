"""Map the four top-level folders to the `dosewise.<layer>` namespace (architecture note 3.1).

Metadata lives in pyproject.toml; this file only computes the package list so that a new
subpackage can never be missing from the wheel while still importing in an editable install.
"""

from setuptools import find_packages, setup

LAYERS = ("data_schemas", "pipelines", "models", "app")
DATA = ["py.typed", "**/*.sql", "**/*.toml", "**/*.csv", "**/*.json", "**/*.md"]

packages, package_dir = [], {}
for layer in LAYERS:
    for name in find_packages(include=[layer, layer + ".*"]):
        packages.append(f"dosewise.{name}")
    package_dir[f"dosewise.{layer}"] = layer

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={f"dosewise.{layer}": DATA for layer in LAYERS},
)
