"""The package as a user meets it: its metadata, its console scripts and their ``--help``."""

import configparser
import importlib
import importlib.metadata
import re
from pathlib import Path

import pytest

import zoo
from benchmarks import cli, distributed, guidance, speed

SETUP_CFG = Path(__file__).parents[1] / "setup.cfg"
# Each console script and the parser behind it.
COMMANDS = {
    "zoo-bench": cli.parser,
    "zoo-bench-speed": speed.parser,
    "zoo-bench-distributed": distributed.parser,
    "zoo-bench-guidance": guidance.parser,
}


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
    assert COMMANDS[name]().prog == name  # usage and error lines name the script


def test_installed_metadata_matches_setup_cfg():
    # A stale install (e.g. one from before a script was added) fails here, not in a user's shell.
    installed = importlib.metadata.distribution("zoo")
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
    assert capsys.readouterr().out == f"{name} {zoo.__version__}\n"


def test_zoo_bench_version_exits_0():
    from benchmarks.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_is_plain_text(name):
    text = COMMANDS[name]().format_help()
    assert not re.search(r":[a-z]+:`", text), text  # a Sphinx role such as :func:`...`
    assert "``" not in text, text


def test_plain_keeps_the_text_of_roles_and_literals():
    text = "Trains :func:`zoo.presets.toy`, a :class:`~benchmarks.profiles.Config` and ``T``."
    assert cli.plain(text) == "Trains zoo.presets.toy, a benchmarks.profiles.Config and T."
