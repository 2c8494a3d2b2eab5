"""The Dask backend (issue 14): the same tasks on a dask.distributed cluster give the same
JSON as a local run, and an allocator that raises or hangs there is an error verdict, the
hung worker process replaced, the cluster still usable."""
import json
from pathlib import Path

import numpy as np
import pytest

# a 2-process Dask LocalCluster for the module (~10 s): the full suite runs it, not the fast lane
pytestmark = pytest.mark.slow

distributed = pytest.importorskip("distributed")

import fairaudit as fa  # noqa: E402
from fairaudit.errors import AllocatorError, AllocatorTimeout  # noqa: E402
from fairaudit.run.sampler import Sampler  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "allocators"
BROKEN = Path(__file__).resolve().parent / "allocators" / "broken"
POP = str(ROOT / "examples" / "data" / "population.csv")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c


def cli_json(args, tmp_path, name):
    from click.testing import CliRunner

    from fairaudit.cli import main
    out = tmp_path / name
    res = CliRunner().invoke(main, ["check", *args, "--json", str(out), "--html", str(tmp_path / "r.html")],
                             catch_exceptions=False)
    d = json.loads(out.read_text())
    d.pop("created"), d.pop("command")
    return res.exit_code, d


def test_cluster_gives_the_same_json_as_a_local_run(cluster, tmp_path):
    args = [str(EX / "broome_lottery.py"), "--checks", "selection_rates,broome", "--data", POP,
            "--draws", "3000", "--param", "selection_rates.threshold=0.9"]
    code_local, local = cli_json(args, tmp_path, "local.json")
    code_dask, on_dask = cli_json(args + ["--scheduler", cluster.scheduler_address], tmp_path, "dask.json")
    assert code_local == code_dask
    assert local["checks"][0]["draws"] == 3000
    assert on_dask == local


def test_raising_and_hanging_allocators_on_the_cluster(cluster):
    inst = fa.Instance("pool", scores=np.linspace(0.05, 1.0, 20), k=5)
    with Sampler.open(str(BROKEN / "raises_value_error.py"), scheduler=cluster.scheduler_address, timeout=0.5) as s:
        with pytest.raises(AllocatorError, match="raised ValueError: the model file is missing") as ei:
            s.draw(inst, 50, "dask-raise")
        assert ei.value.input_label == "pool" and ei.value.draw == 0
    with Sampler.open(str(BROKEN / "catches_base_exception.py"), scheduler=cluster.scheduler_address,
                      timeout=0.5) as s:
        with pytest.raises(AllocatorTimeout, match="0.5 s per-call timeout") as ei:
            s.draw(inst, 50, "dask-hang")
        assert ei.value.draw == 0
        assert s.pool.restarts >= 1          # the hung worker process on the cluster was killed and replaced
    # the cluster is still usable, with the same draws as locally
    with Sampler.open(str(EX / "broome_lottery.py"), seed=2, scheduler=cluster.scheduler_address) as s:
        remote = s.draw(inst, 600, "after")
    local = Sampler(fa.load_target(str(EX / "broome_lottery.py")), seed=2, isolate=False).draw(inst, 600, "after")
    assert np.array_equal(remote, local)


def test_scheduler_from_pyproject(cluster, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(f'[tool.fairaudit]\nscheduler = "{cluster.scheduler_address}"\n')
    monkeypatch.chdir(tmp_path)
    from fairaudit.run import dask_pool
    seen = []
    orig = dask_pool.DaskPool.__init__

    def spy(self, payload, scheduler, **kw):
        seen.append(scheduler)
        orig(self, payload, scheduler, **kw)
    monkeypatch.setattr(dask_pool.DaskPool, "__init__", spy)
    code, d = cli_json([str(EX / "uniform_lottery.py"), "--checks", "selection_rates", "--data", POP, "--draws", "300"],
                       tmp_path, "r.json")
    assert seen == [cluster.scheduler_address]
    assert d["checks"][0]["draws"] == 300 and d["checks"][0]["verdict"] != "error"


def test_pipe_forgery_on_the_cluster_is_an_error(cluster):
    """Issue 26.1 on Dask: the forged pickle the allocator writes into its reply pipe on a
    cluster machine is refused there (the reply is read as data), and the audit process
    gets an allocator error, never the pickle."""
    hostile = Path(__file__).resolve().parent / "allocators" / "hostile" / "pipe_forgery.py"
    inst = fa.Instance("pop", scores=np.linspace(0, 1, 20), k=5)
    with Sampler.open(str(hostile), scheduler=cluster.scheduler_address) as s:
        with pytest.raises(AllocatorError, match="cannot read") as ei:
            s.draw(inst, 10, "forged")
    assert "nothing it sent was used" in str(ei.value)
