"""One local Ray for every sweep test (starting Ray costs seconds): 2 CPUs, no dashboard."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    import ray

    from dosewise.app.sweep import connect_ray

    connect_ray(None, num_cpus=2)
    yield
    ray.shutdown()
