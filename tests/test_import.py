"""``import zoo`` is cheap: the heavy libraries load when a name that needs them is first used.

Each check runs in a fresh interpreter, since this test process has long imported them all.
"""

import json
import subprocess
import sys

import pytest

HEAVY = ("jax", "ot", "distrax", "diffrax", "haiku", "matplotlib", "sklearn", "optax")


def _fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter; it prints one JSON value, returned here."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_zoo_imports_no_heavy_library():
    loaded = _fresh(
        f"import json, sys, zoo; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert loaded == []


def test_version_needs_no_heavy_library():
    out = _fresh(
        "import json, sys, zoo; v = zoo.__version__; "
        f"print(json.dumps([v, [m for m in {HEAVY!r} if m in sys.modules]]))"
    )
    assert out[1] == []
    assert out[0].count(".") == 2


def test_every_public_name_resolves_and_is_listed():
    # each name: where it comes from (a submodule's __name__, or a class's or function's
    # __module__); and `from zoo import X` gives the same object as zoo.X
    out = _fresh(
        "import json, types, zoo; names = list(zoo.__all__); "
        "where = {n: getattr(v, '__name__' if isinstance(v, types.ModuleType) else '__module__') "
        "for n in names for v in [getattr(zoo, n)]}; "
        "from zoo import DDPM, ProbabilityFlow, data; "
        "same = [DDPM is zoo.DDPM, ProbabilityFlow is zoo.ProbabilityFlow, data is zoo.data]; "
        "print(json.dumps([names, sorted(set(names) - set(dir(zoo))), where, same]))"
    )
    names, unlisted, where, same = out
    assert len(names) == len(set(names)) > 0
    assert unlisted == []
    assert same == [True, True, True]
    assert where["data"] == "zoo.data" and where["DDPM"] == "zoo.models"
    assert all(module.startswith("zoo.") for module in where.values()), where


def test_a_name_is_imported_only_when_first_used():
    out = _fresh(
        "import json, sys, zoo; before = 'zoo.sdes' in sys.modules; zoo.VP; "
        "print(json.dumps([before, 'zoo.sdes' in sys.modules, 'ot' in sys.modules]))"
    )
    assert out == [False, True, False]


@pytest.mark.parametrize("name", ["nope", "Ddpm", "_SUBMODULES_"])
def test_an_unknown_name_is_an_attribute_error_naming_it(name):
    import zoo

    with pytest.raises(AttributeError, match=f"module 'zoo' has no attribute '{name}'"):
        getattr(zoo, name)
    with pytest.raises(ImportError, match=name):
        exec(f"from zoo import {name}", {})
