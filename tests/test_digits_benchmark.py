"""``python -m benchmarks.digits`` end to end on a tiny budget, and its command-line errors."""

import csv

import pytest

from benchmarks import digits


def test_the_writeup_runs_end_to_end_with_ancestral_and_ddim(tmp_path):
    out = tmp_path / "digits"
    argv = ["--families", "writeup", "--steps", "2", "--samples", "8", "--channels", "8"]
    assert digits.main([*argv, "--bpd-images", "2", "--out", str(out)]) == 0
    for name in ("results.csv", "results.md", "samples.png", "denoising.gif"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    writeup = {r["sampler"]: r for r in rows if r["family"] == "writeup"}
    assert list(writeup) == ["default", "ddim-10", "ddim-20", "ddim-50", "ode"]
    # The write-up's ancestral sampler visits its 200 levels (199 steps and the final
    # denoising step); DDIM-10 evaluates the same network 10 times.
    assert int(writeup["default"]["nfe"]) == 200
    assert int(writeup["ddim-10"]["nfe"]) == 10
    for row in writeup.values():
        assert float(row["bpd"]) > 0 and int(float(row["nonfinite"])) == 0
    assert [r["family"] for r in rows][-1] == "floor"
    assert "| writeup | ddim-10 |" in (out / "results.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--families", "gan"], "expected comma-separated families from ddpm"),
        (["--steps", "0"], "expected a positive int"),
        (["--channels", "12"], "--channels must be a multiple of 8"),
        (["--bpd-images", "-1"], "--bpd-images must be >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys):
    assert digits.main(argv) == digits.USAGE_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert message in err
