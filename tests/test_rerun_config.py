"""Every command that makes a results folder writes the ``config.toml`` that reruns it:
``--config`` gives back the very settings of the command line that wrote it (defaults
included, so a changed default or another backend's does not change a rerun), a flag beside
it overrides one, and a bad file is one line naming ``--config``. The comparison's own
``config.toml`` is tested in test_user_inputs.py; a tiny frontier run is rerun from its file
in test_frontier.py."""

import tomllib

import pytest

from zoo.bench.commands import frontier, guidance, speed
from zoo.bench.plan import config_file, parsing

COMMANDS = {
    "frontier": (
        frontier.parser,
        ["--processes", "vp,ve", "--datasets=moons", "--samplers", "dpm,ipndm[grid=time]",
         "--nfe", "5,10", "--samples", "200"],
    ),
    "guidance": (
        guidance.parser,
        ["--families=ddpm,flow", "--guidance", "0,2", "--steps", "10", "--channels=8",
         "--sampler", "ddim-5", "--per-class", "3", "--seed", "4"],
    ),
    "speed": (
        speed.parser,
        ["--runs", "1", "--train-steps=10", "--no-sampling", "--samples", "20"],
    ),
}  # fmt: skip


def _write(command: str, argv: list[str], folder) -> None:
    parser, _ = COMMANDS[command]
    assert config_file.write_settings(folder, command, parsing.settings(parser(), argv))


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_config_gives_back_the_command_line(command, tmp_path):
    parser, argv = COMMANDS[command]
    folder = tmp_path / "made"
    folder.mkdir()
    _write(command, [*argv, f"--out={folder}"], folder)
    text = (folder / "config.toml").read_text()
    assert text.startswith(f"# zoo-bench {command} settings")
    assert "out" not in tomllib.loads(text)  # the folder that holds the file
    expected = parser().parse_args([*argv, f"--out={folder}"])
    rerun = parser().parse_args(["--config", str(folder / "config.toml")])
    assert vars(rerun) == vars(expected)
    # every setting is in the file, those left to their defaults too
    settings = {k for k in tomllib.loads(text) if k != "versions"}
    flags = {a.dest for a in parser()._actions if a.option_strings}
    assert settings == flags - {"help", "version", "config", "out", *parser().modes}


def test_a_flag_beside_the_config_overrides_its_setting(tmp_path):
    _write("frontier", COMMANDS["frontier"][1], tmp_path)
    path = str(tmp_path / "config.toml")
    args = frontier.parser().parse_args([f"--config={path}", "--nfe=20", "--out", "elsewhere"])
    assert args.nfe == (20,) and str(args.out) == "elsewhere"
    assert args.processes == ("vp", "ve")  # the rest from the file
    args = speed.parser().parse_args(["--config", _speed_config(tmp_path)])
    assert args.no_sampling is True and args.runs == (1,)


def _speed_config(tmp_path) -> str:
    folder = tmp_path / "speed"
    folder.mkdir()
    _write("speed", COMMANDS["speed"][1], folder)
    return str(folder / "config.toml")


def test_another_commands_config_is_left_alone(tmp_path):
    # `zoo-bench gpu` runs the speed benchmark into the comparison's folder
    (tmp_path / "config.toml").write_text("# zoo-bench settings of this results folder.\n")
    settings = parsing.settings(speed.parser(), COMMANDS["speed"][1])
    assert config_file.write_settings(tmp_path, "speed", settings) is None
    assert (tmp_path / "config.toml").read_text().startswith("# zoo-bench settings")


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "argument --config: cannot read"),
        ("samples = [", "is not valid TOML"),
        ('sample = "200"\n', "has unknown settings sample; expected some of"),
        ('samples = "12"\n', "argument --samples: expected"),  # checked as the flag is
    ],
)
def test_a_bad_config_is_one_line_naming_it(content, message, tmp_path, capsys):
    path = tmp_path / "config.toml"
    if content is not None:
        path.write_text(content)
    assert frontier.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
