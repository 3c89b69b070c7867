"""Map the four top-level folders to the `dosewise.<layer>` namespace (architecture note 3.1).

Metadata lives in pyproject.toml; this file only computes the package list so that a new
subpackage can never be missing from the wheel while still importing in an editable install.
`find_namespace_packages` also lists the data-only folders (sql/*, rules, configs), so setuptools
ships them as packages instead of warning that they "would be ignored".
"""

from setuptools import find_namespace_packages, setup

LAYERS = ("data_schemas", "pipelines", "models", "app")
DATA = ["py.typed", "*.sql", "*.toml", "*.csv", "*.json", "*.md"]
SKIP = ("__pycache__",)

packages, package_dir, package_data = [], {}, {}
for layer in LAYERS:
    for name in find_namespace_packages(include=[layer, layer + ".*"]):
        if any(part in SKIP for part in name.split(".")):
            continue
        packages.append(f"dosewise.{name}")
        package_data[f"dosewise.{name}"] = DATA
    package_dir[f"dosewise.{layer}"] = layer

setup(packages=packages, package_dir=package_dir, package_data=package_data)
