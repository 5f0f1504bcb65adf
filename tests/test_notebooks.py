"""The notebooks run top to bottom at the tiny budget, and the committed ones are fit to publish.

Each selected notebook is executed with nbclient in a temporary copy (its figures land there
too; the committed files are never rewritten), with ``ZOO_NOTEBOOK_BUDGET=tiny`` and the
``python3`` kernel, which jupyter_client starts with this interpreter. Any cell that raises
fails that notebook's test, which shows the cell and its traceback.

The notebooks spend most of their time compiling, which is single-threaded, so they run two at
a time (``ZOO_NOTEBOOK_WORKERS`` overrides that), each in its own process, and share one
JAX compilation cache (the session's, from tests/conftest.py): a preset trained at the same
budget in two notebooks is compiled once. ``ORDER`` starts the notebook that trains most first.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Longest first; 03 and 04 train presets that 02 has compiled by then; 06 compiles a UNet.
ORDER = ["02", "06", "05", "03", "04", "01"]
CELL_TIMEOUT_S = 300
NOTEBOOK_TIMEOUT_S = 900
MAX_BYTES = 2_000_000

# The kernel talks to its runner over Unix sockets in the notebook's own folder: over TCP
# (jupyter_client's default) it takes ports that were free a moment before, and another
# process (a second kernel, a jax.distributed test) took one first in a CI run.
_RUNNER = """
import os
import sys
import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

path, workdir, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
notebook = nbformat.read(path, as_version=4)
kernel = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(workdir, "kernel"))
client = NotebookClient(
    notebook, km=kernel, timeout=timeout, kernel_name="python3",
    resources={"metadata": {"path": workdir}},
)
client.execute()
"""


def _execute(path: Path, workdir: Path, env: dict) -> subprocess.CompletedProcess:
    copy = workdir / path.name
    copy.write_bytes(path.read_bytes())
    return subprocess.run(
        [sys.executable, "-c", _RUNNER, str(copy), str(workdir), str(CELL_TIMEOUT_S)],
        env=env, capture_output=True, text=True, timeout=NOTEBOOK_TIMEOUT_S,
    )  # fmt: skip


@pytest.fixture(scope="session")
def executed(request, tmp_path_factory) -> dict[str, concurrent.futures.Future]:
    """Start every notebook selected in this session; a future per notebook stem."""
    selected = {
        item.callspec.params["path"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_notebook_runs_at_tiny_budget"
    }
    rank = {stem: i for i, stem in enumerate(ORDER)}
    selected = sorted(selected, key=lambda p: rank.get(p.stem[:2], len(ORDER)))
    env = dict(os.environ)
    env["ZOO_NOTEBOOK_BUDGET"] = "tiny"
    # The session's compilation cache (tests/conftest.py), or one of their own.
    if not env.get("JAX_COMPILATION_CACHE_DIR"):
        env.update({
            "JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax_compilation_cache")),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        })  # fmt: skip
    workers = int(os.environ.get("ZOO_NOTEBOOK_WORKERS", min(2, os.cpu_count() or 1)))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(workers, 1))
    futures = {
        path.stem: pool.submit(_execute, path, tmp_path_factory.mktemp(path.stem), env)
        for path in selected
    }
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def test_every_family_has_one_colour_and_a_label():
    import zoo

    families = set(zoo.presets.FAMILIES) | {"data"}
    assert set(zoo.plotting.FAMILY_COLORS) == families == set(zoo.plotting.FAMILY_LABELS)
    assert len(set(zoo.plotting.FAMILY_COLORS.values())) == len(families)
    assert zoo.plotting.family_color("case_study/ddpm") == zoo.plotting.FAMILY_COLORS["ddpm"]
    with pytest.raises(ValueError, match="unknown family"):
        zoo.plotting.family_color("gan")


def test_there_are_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"], NOTEBOOKS
    assert sorted(ORDER) == [p.stem[:2] for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_at_tiny_budget(path, executed):
    result = executed[path.stem].result()
    if result.returncode != 0:
        pytest.fail(f"{path.name} failed at the tiny budget:\n{result.stderr[-6000:]}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_executed_and_small(path):
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{path.name} is {size / 1e6:.2f} MB; the limit is 2 MB"
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    cells = notebook.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# "), (
        f"{path.name} must open with a markdown cell: a title and the story"
    )
    code = [c for c in cells if c.cell_type == "code"]
    assert "ZOO_NOTEBOOK_BUDGET" in code[0].source, (
        f"{path.name}: the first code cell must read ZOO_NOTEBOOK_BUDGET"
    )
    assert all(c.execution_count is not None for c in code), (
        f"{path.name} is committed without outputs: execute it (laptop budget) before committing"
    )
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name} holds an error output: {json.dumps(errors[0])[:300]}"
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} shows no figure"
    figures = list((ROOT / "notebooks" / "figures").glob(f"{path.stem[:2]}_*.png"))
    assert figures, f"no notebooks/figures/{path.stem[:2]}_*.png for the README"
