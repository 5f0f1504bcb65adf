"""The README's tables of this folder, computed from its results.csv and noise_floor.csv:
sliced W2 over the noise floor with each family's own sampler, with DPM-Solver++ and EDM's Heun
at about 20 NFE, with DPM-Solver++ at 100 NFE per seed, and with the best fast sampler at 10
and 20 NFE, each mixture's mode spread, the likelihood (paired where the data's density is
known, else less the entropy), the pairs of families that Welch's t test over the seeds tells
apart at level 0.05, and flow matching against each other family. Mean ± sd over the seeds.

    cd benchmarks/results/cpu-standard-six && python tables.py > tables.md
"""

from pathlib import Path

import pandas as pd

from zoo import quality

HERE = Path(__file__).parent
FAST = ("dpm", "unipc", "ipndm")
LEVEL = quality.ALPHA  # Welch's t test over the seeds (zoo.quality.compare), as summarize


def _cell(values: pd.Series, digits: int) -> str:
    if values.isna().any():
        return "-"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def _table(frame: pd.DataFrame, column: str, digits: int) -> pd.DataFrame:
    table = frame.groupby(["dataset", "family"], sort=False)[column].apply(_cell, digits=digits)
    return table.unstack("family")


def verdicts(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Flow matching against each other family per dataset: better, worse (lower is better) or
    a tie, by Welch's t test over the seeds of each at level LEVEL."""
    rows = []
    for dataset, part in frame.groupby("dataset", sort=False):
        flow = part[part.family == "flow"][column]
        if flow.empty or flow.isna().any():
            continue
        for family, other in part[part.family != "flow"].groupby("family", sort=False):
            verdict = quality.compare(flow, other[column]).verdict
            rows.append({"dataset": dataset, "family": family, "verdict": verdict})
    return (
        pd.DataFrame(rows)
        .pivot(index="dataset", columns="family", values="verdict")
        .reindex(
            index=list(dict.fromkeys(frame.dataset)),
            columns=[f for f in dict.fromkeys(frame.family) if f != "flow"],
        )
    )


def pairs_apart(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Every pair of families on each dataset whose means Welch's t test tells apart."""
    rows = []
    families = list(dict.fromkeys(frame.family))
    for dataset, part in frame.groupby("dataset", sort=False):
        for i, a in enumerate(families):
            for b in families[i + 1 :]:
                x, y = part[part.family == a][column], part[part.family == b][column]
                if quality.compare(x, y).verdict == quality.TIE:
                    continue
                (low, better), (high, worse) = sorted([(x.mean(), a), (y.mean(), b)])
                means = f"{low:.2f} against {high:.2f}"
                rows.append({"dataset": dataset, "better": better, "worse": worse, "means": means})
    return pd.DataFrame(rows)


def _means(frame: pd.DataFrame, sampler: str) -> pd.DataFrame:
    part = frame[frame.sampler == sampler]
    return part.groupby(["dataset", "family"], sort=False).ratio.mean().unstack("family")


def main() -> None:
    results = pd.read_csv(HERE / "results.csv")
    floor = pd.read_csv(HERE / "noise_floor.csv").groupby("dataset").sliced_w2.mean()
    results["ratio"] = results.sliced_w2 / results.dataset.map(floor)
    own = results[results.sampler == "default"]
    print("## Sliced W2 / floor, each family's own sampler\n")
    print(_table(own, "ratio", 2).to_markdown())
    families = list(dict.fromkeys(own.family))
    count = len(own.dataset.unique()) * len(families) * (len(families) - 1) // 2
    apart = pairs_apart(own, "ratio")
    print(f"\nPairs told apart (Welch's t test, level {LEVEL}): {len(apart)} of {count}\n")
    print(apart.to_markdown(index=False) if len(apart) else "none")
    dpm, edm = _means(results, "dpm-20"), _means(results, "edm-10")
    print("\n## Sliced W2 / floor at about 20 NFE: DPM-Solver++(2M) at 20 | EDM's Heun at 19\n")
    print(dpm.combine(edm, lambda a, b: a.map("{:.2f}".format) + " \\| " + b.map("{:.2f}".format))
          .to_markdown())  # fmt: skip
    print("\n## Sliced W2 / floor, DPM-Solver++(2M) at 100 NFE, per seed (median over datasets)\n")
    ode = results[results.sampler == "dpm-100"]
    print(ode.pivot_table(index="family", columns="seed", values="ratio", aggfunc="median",
                          sort=False).round(2).to_markdown())  # fmt: skip
    for nfe in (10, 20):
        fast = results[results.sampler.isin([f"{kind}-{nfe}" for kind in FAST])]
        best = fast.groupby(["dataset", "family", "sampler"], sort=False).ratio.mean()
        best = best.groupby(["dataset", "family"], sort=False).idxmin().map(lambda k: k[2])
        chosen = fast.set_index(["dataset", "family"]).sampler == best.reindex(
            fast.set_index(["dataset", "family"]).index
        )
        rows = fast[chosen.to_numpy()]
        table = rows.groupby(["dataset", "family"], sort=False).apply(
            lambda g: f"{_cell(g.ratio, 2)} ({g.sampler.iloc[0].split('-')[0]})",
            include_groups=False,
        )
        print(f"\n## Sliced W2 / floor, the best of {', '.join(FAST)} at {nfe} NFE\n")
        print(table.unstack("family").to_markdown())
    mixtures = own[own.spread.notna()]
    print("\n## Each mode's spread (1: as wide as the data's), own sampler\n")
    print(_table(mixtures, "spread", 2).to_markdown())
    print("\n## Paired excess NLL (KL, nats), where the data's density is known\n")
    print(_table(own[own.nll_kl.notna()], "nll_kl", 3).to_markdown())
    print("\n## Excess NLL over the entropy (nats), every dataset\n")
    print(_table(own, "excess_nll", 3).to_markdown())
    print(f"\n## Flow matching against each family (Welch's t test, level {LEVEL})\n")
    print("Sliced W2, own samplers:\n")
    print(verdicts(own, "ratio").to_markdown())
    print("\nExcess NLL over the entropy:\n")
    print(verdicts(own, "excess_nll").to_markdown())


if __name__ == "__main__":
    main()
