"""Ray's members train in worker processes that never run sdd-tui's entry point: the OpenMP waiting policy
the driver chose (core.engine.openmp) travels with each task, in its runtime environment."""

from __future__ import annotations

import pytest

from sdd_tui.core.history.records import SweepRecord
from sdd_tui.core.history.store import Store
from sdd_tui.core.sweeps.sweep_ray import RayDriver


class Launched(Exception):
    """Stops the driver once the first task's options are known."""


class FakeRay:
    def __init__(self):
        self.options: list[dict] = []

    def cluster_resources(self):
        return {"CPU": 2}

    def remote(self, *args, **kwargs):
        fake = self

        class Remote:
            def __init__(self, target=None):
                self.target = target

            def __call__(self, target):  # ray.remote(num_cpus=0)(EventRelay)
                return Remote(target)

            def remote(self, *args, **kwargs):
                return object()

            def options(self, **options):
                fake.options.append(options)
                raise Launched

        return Remote(args[0] if args and callable(args[0]) else None)


def driver(home, ray) -> RayDriver:
    member = {"run_id": "20261207-000000-aaaa", "name": "m", "config": {"runtime": {"device": "cpu"}}}
    sweep = SweepRecord.parse({"id": "sw1", "members": [member]})
    return RayDriver(ray, Store(home), sweep, [member], worker_home=home)


@pytest.mark.parametrize("environ, expected", [
    ({"GOMP_SPINCOUNT": "10000"}, {"GOMP_SPINCOUNT": "10000"}),  # the entry point's default
    ({"OMP_WAIT_POLICY": "PASSIVE"}, {"OMP_WAIT_POLICY": "PASSIVE"}),  # a user's own choice
    ({}, None),  # nothing chosen: the cluster's own environment
])
def test_each_task_carries_the_drivers_openmp_waiting_policy(home, monkeypatch, environ, expected):
    for key in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    ray = FakeRay()
    with pytest.raises(Launched):
        driver(home, ray).run()
    (options,) = ray.options
    assert options.get("runtime_env", {}).get("env_vars") == expected
    assert options["num_cpus"] == 1.0 and options["num_gpus"] == 0
