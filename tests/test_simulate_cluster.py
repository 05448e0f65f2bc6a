"""`floorflow simulate --cluster ADDRESS`: a sweep's runs on a Dask cluster give what the local pool gives.

The cluster is a local one of two worker processes started here (loopback only); the same seeds and
the same code must give the same figures, whichever executor ran them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main, sweeps

ROOT = Path(__file__).resolve().parent.parent
MODULE = str(ROOT / "workflows/sphere-module.yaml")
SWEEP_RF = str(ROOT / "tests/profiles/sweep-rf.yaml")
SWEEP = ("--units", "200", "--profile", SWEEP_RF, "--replications", "3", "--seed", "11")
SWEEP += ("--vary", "stations.rf.slots=3,6", "--vary", "arrivals.rate_per_hour=80,150", "--target-uph", "70")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        yield str(cluster.scheduler_address)


def _simulate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["simulate", *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _document(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = _simulate(capsys, MODULE, *SWEEP, "--json", *args)
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


def test_the_cluster_gives_the_local_pools_figures(capsys: pytest.CaptureFixture[str], scheduler: str) -> None:
    local = _document(capsys, "--jobs", "2")
    on_cluster = _document(capsys, "--cluster", scheduler)
    assert on_cluster == local
    assert len(local["scenarios"]) == 4 and local["seeds"] == [11, 12, 13]
    assert any(_ran_there(scheduler).values()), "the cluster's workers ran no sweep"


def _ran_there(scheduler: str) -> dict[str, bool]:
    """Per worker of the cluster, whether its process has run a sweep's task (imported the module)."""
    from distributed import Client

    with Client(scheduler) as client:
        ran: dict[str, bool] = client.run(lambda: "engine.simulate.sweep" in sys.modules)
    return ran


def test_the_cluster_runs_replications(capsys: pytest.CaptureFixture[str], scheduler: str) -> None:
    args = (MODULE, "--units", "200", "--profile", SWEEP_RF, "--replications", "2", "--json")
    code, out, _ = _simulate(capsys, *args, "--cluster", scheduler)
    assert code == 0
    assert json.loads(out) == json.loads(_simulate(capsys, *args)[1])


def test_no_scheduler_at_the_address_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweeps, "CLUSTER_TIMEOUT_S", 1)
    code, out, err = _simulate(capsys, MODULE, "--replications", "2", "--cluster", "tcp://127.0.0.1:9")
    assert code == 2 and out == ""
    assert "floorflow: error: --cluster tcp://127.0.0.1:9: no Dask scheduler answered" in err


def test_without_the_cluster_extra_one_line_says_which_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails, as when not installed
    code, _, err = _simulate(capsys, MODULE, "--replications", "2", "--cluster", "tcp://127.0.0.1:8786")
    assert code == 2
    assert err.strip() == (
        "floorflow: error: --cluster needs dask[distributed], which the plain install leaves out: "
        "pip install 'floorflow[cluster]'"
    )
