"""A local Ray instance started for a sweep listens on the loopback interface only."""

from __future__ import annotations

import ipaddress

import psutil
import pytest

ray = pytest.importorskip("ray")  # the `ray` extra; CI installs it with `.[test]`
from sdd_tui.core.sweeps.sweep_ray import ray_session  # noqa: E402


def listening_addresses(root: psutil.Process) -> dict[str, set[str]]:
    """Listening TCP addresses of this process and every process below it, by process name."""
    found: dict[str, set[str]] = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            for connection in process.net_connections(kind="tcp"):
                if connection.status == psutil.CONN_LISTEN:
                    found.setdefault(process.name(), set()).add(connection.laddr.ip)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def is_loopback(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    return parsed.is_loopback or bool(getattr(parsed, "ipv4_mapped", None) and parsed.ipv4_mapped.is_loopback)


@pytest.mark.slow
def test_a_local_sweep_instance_listens_on_loopback_only():
    assert not ray.is_initialized(), "another test left Ray running"
    with ray_session(None) as session:
        @session.remote
        def one() -> int:
            return 1

        assert session.get(one.remote()) == 1
        found = listening_addresses(psutil.Process())
    servers = {name for name in found if "gcs" in name or "raylet" in name}
    assert servers, f"no Ray server found listening: {found}"  # the check saw Ray's own processes
    public = {name: sorted(a for a in addresses if not is_loopback(a)) for name, addresses in found.items()}
    assert not any(public.values()), f"listening beyond 127.0.0.1: {public}"
    assert not ray.is_initialized()
