"""Every valued option of every command, walked with the values a user mistypes: each either
parses or is refused with exit code 2 and one line naming the option; never a traceback. The
cases come from the parsers, so a new option is walked without a new test."""

import argparse
import importlib

import pytest

from zoo.bench import cache
from zoo.bench.commands import distributed, frontier, gpu, guidance, nll_split, speed
from zoo.bench.plan import cli, parsing

PARSERS = {
    "zoo-bench": cli.parser,
    "zoo-bench speed": speed.parser,
    "zoo-bench guidance": guidance.parser,
    "zoo-bench distributed": distributed.parser,
    "zoo-bench nll-split": nll_split.parser,
    "zoo-bench frontier": frontier.parser,
    "zoo-bench gpu": gpu.parser,
}
#: what a user mistypes: not numbers, non-finite, out of range at both ends, beyond int64,
#: fractions where integers are due, empty, lists gone wrong
PROBES = ("abc", "nan", "inf", "-inf", "-1", "0", "2.5", "1e400", "99999999999999999999", "",
          ",", "1,,2", "-0", "1e-400")  # fmt: skip

#: valid values of the arguments a command requires, beside the one probed
REQUIRED = {
    "zoo-bench distributed": [
        "--coordinator=127.0.0.1:1234",
        "--num-processes=2",
        "--process-id=0",
    ],
    "zoo-bench nll-split": ["folder", "--families=vp"],
}


def _valued(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if (
            action.option_strings
            and action.nargs is None
            and not isinstance(
                action, (argparse._StoreConstAction, argparse._HelpAction, argparse._VersionAction)
            )
        ):
            yield action.option_strings[-1]


CASES = [(name, flag) for name, make in PARSERS.items() for flag in _valued(make())]


def test_the_walk_covers_every_command():
    assert {name for name, _ in CASES} == set(PARSERS)
    assert len(CASES) > 40


def _probe(name: str, parse, flag: str, capsys) -> None:
    given = [a for a in REQUIRED.get(name, []) if not a.startswith(f"{flag}=")]
    for value in PROBES:
        argv = [*given, f"{flag}={value}"]
        try:
            parse(argv)
        except parsing.UsageError as e:  # main prints it as one line, exit code 2
            assert flag in str(e) and "\n" not in str(e), (flag, value, str(e))


@pytest.mark.parametrize("name, flag", CASES, ids=[f"{n} {f}" for n, f in CASES])
def test_a_mistyped_value_parses_or_is_one_line_naming_the_option(name, flag, capsys):
    if name == "zoo-bench":  # all of zoo-bench's checks before a run, not argparse's only
        parse = lambda argv: cli.parse(argv, check_memory=False)
    else:
        parse = PARSERS[name]().parse_args
    _probe(name, parse, flag, capsys)


def test_the_walk_finds_a_traceback(capsys):
    broken = parsing.Parser()
    broken.add_argument("--steps", type=lambda text: int(float(text)))  # inf: OverflowError
    with pytest.raises(OverflowError):
        _probe("broken", broken.parse_args, "--steps", capsys)


def _numeric_fields():
    import dataclasses

    from zoo import grids, multistep, samplers, sdes

    for module in (samplers, multistep, sdes, grids):
        for name in getattr(module, "__all__", dir(module)):
            cls = getattr(module, name)
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
                continue
            try:
                cls()
            except TypeError:  # needs arguments: its own tests cover it
                continue
            for field in dataclasses.fields(cls):
                default = getattr(cls(), field.name)
                if isinstance(default, (int, float)) and not isinstance(default, bool):
                    yield cls, field.name


FIELDS = list(_numeric_fields())


@pytest.mark.parametrize("cls, field", FIELDS, ids=[f"{c.__name__}.{f}" for c, f in FIELDS])
def test_a_constructor_refuses_a_bad_number_naming_its_argument(cls, field):
    for value in (float("nan"), float("inf"), float("-inf"), -1, 0, 2.5, 1e308, 2**63):
        try:
            cls(**{field: value})
        except (TypeError, ValueError) as e:
            assert field in str(e) and "\n" not in str(e), (cls, field, value, str(e))
            continue
        assert value == value and abs(value) != float("inf"), (cls, field, value, "accepted")


def test_an_output_folder_that_cannot_be_written_is_one_line_before_any_work(tmp_path, capsys):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    out = blocked / "out"  # under a file: no folder can be made there
    assert frontier.main(["--out", str(out), "--processes=ddpm", "--samplers=ddim", "--nfe=3"]) == 2
    assert f"--out: cannot write to {out}" in capsys.readouterr().err
    assert guidance.main(["--out", str(out), "--steps=1"]) == 2
    assert f"--out: cannot write to {out}" in capsys.readouterr().err


def test_nll_split_refuses_a_folder_it_cannot_write_before_any_work(tmp_path, capsys, monkeypatch):
    (tmp_path / "cache" / "runs").mkdir(parents=True)

    def refuse(folder):  # as a read-only folder does (the tests may run as root)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cache, "check_writable", refuse)
    assert nll_split.main([str(tmp_path), "--families=vp"]) == 2
    assert f"folder: cannot write to {tmp_path}: Permission denied" in capsys.readouterr().err


def test_every_command_parses_with_the_one_parser():
    from zoo.bench.__main__ import COMMANDS

    for name, (module, _) in COMMANDS.items():
        made = importlib.import_module(module).parser() if name != "compare" else cli.parser()
        assert isinstance(made, parsing.Parser), name
        assert made.prog == ("zoo-bench" if name == "compare" else f"zoo-bench {name}"), name
    assert {p.prog for p in (make() for make in PARSERS.values())} == set(PARSERS)
