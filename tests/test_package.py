"""The package as a user meets it: its metadata, its console scripts and their ``--help``."""

import ast
import configparser
import importlib
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import setuptools

import zoo
from zoo.bench.commands import distributed, guidance, speed
from zoo.bench.plan import cli

ROOT = Path(__file__).parents[1]
SETUP_CFG = ROOT / "setup.cfg"
# Each console script and the parser behind it.
COMMANDS = {
    "zoo-bench": cli.parser,
    "zoo-bench-speed": speed.parser,
    "zoo-bench-distributed": distributed.parser,
    "zoo-bench-guidance": guidance.parser,
}


def _subcommand(script: str) -> str:
    return script.replace("zoo-bench-", "zoo-bench ")


def _setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(SETUP_CFG)
    return config


def _declared_scripts() -> dict[str, str]:
    lines = _setup_cfg()["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


def test_every_command_is_a_declared_console_script():
    assert set(_declared_scripts()) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_console_script_targets_the_main_of_its_command(name):
    module, _, function = _declared_scripts()[name].partition(":")
    target = getattr(importlib.import_module(module), function)
    assert callable(target)
    # usage and error lines name the command the script runs: zoo-bench-speed is zoo-bench speed
    assert COMMANDS[name]().prog == _subcommand(name)


def test_installed_metadata_matches_setup_cfg():
    # A stale install (e.g. one from before a script was added) fails here, not in a user's shell.
    installed = importlib.metadata.distribution(_setup_cfg()["metadata"]["name"])
    scripts = {e.name: e.value for e in installed.entry_points if e.group == "console_scripts"}
    assert scripts == _declared_scripts()
    assert installed.version == zoo.__version__


def test_version_is_single_sourced():
    assert _setup_cfg()["metadata"]["version"] == "attr: zoo.__version__"
    assert re.fullmatch(r"\d+\.\d+\.\d+", zoo.__version__)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_version_flag_prints_the_script_and_the_package_version(name, capsys):
    with pytest.raises(SystemExit) as stop:
        COMMANDS[name]().parse_args(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"{_subcommand(name)} {zoo.__version__}\n"


def test_zoo_bench_version_exits_0():
    from zoo.bench.commands.compare import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_is_plain_text(name):
    text = COMMANDS[name]().format_help()
    assert not re.search(r":[a-z]+:`", text), text  # a Sphinx role such as :func:`...`
    assert "``" not in text, text


def test_plain_keeps_the_text_of_roles_and_literals():
    text = "Trains :func:`zoo.presets.toy`, a :class:`~zoo.bench.plan.profiles.Config` and ``T``."
    assert cli.plain(text) == "Trains zoo.presets.toy, a zoo.bench.plan.profiles.Config and T."


def test_zoo_bench_help_lists_every_experiment(capsys):
    from zoo.bench import __main__ as bench

    assert bench.main(["--help"]) == 0
    listed = capsys.readouterr().out
    for name, (module, _) in bench.COMMANDS.items():
        assert re.search(rf"^  {name} +\S", listed, re.M), name
        assert callable(importlib.import_module(module).main)


def test_the_package_installs_zoo_alone():
    # What setup.cfg's find: selects from this checkout: the library and its harness, and no
    # top-level `benchmarks` (a name other projects use too; the checkout keeps its results).
    include = _setup_cfg()["options.packages.find"]["include"].split()
    found = setuptools.find_packages(where=str(SETUP_CFG.parent), include=include)
    assert "zoo" in found and "zoo.bench" in found and "zoo.bench.commands" in found
    assert {p.split(".")[0] for p in found} == {"zoo"}
    assert _setup_cfg()["metadata"]["name"] != "zoo"  # taken on the package index


def test_importing_zoo_imports_none_of_the_harness():
    code = "import sys, zoo; zoo.VP; print([m for m in sys.modules if m.startswith('zoo.bench')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_unknown_command_is_one_line_naming_the_commands(capsys):
    from zoo.bench import __main__ as bench

    assert bench.main(["nosuch", "--steps=3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'nosuch'" in err and all(name in err for name in bench.COMMANDS)


def _imported_names(path: Path):
    """(module, name or None) for every absolute import in a script."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield from ((node.module, alias.name) for alias in node.names)


RESULT_SCRIPTS = sorted((ROOT / "benchmarks" / "results").glob("**/*.py"))


@pytest.mark.parametrize("path", RESULT_SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_committed_results_script_imports_what_exists(path):
    # A results folder's script is how its numbers are rerun; a module moved under it must
    # not leave it pointing at nothing.
    for module, name in _imported_names(path):
        imported = importlib.import_module(module)
        if name is not None and not hasattr(imported, name):
            importlib.import_module(f"{module}.{name}")
