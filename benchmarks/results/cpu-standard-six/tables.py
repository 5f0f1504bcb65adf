"""The README's tables of this folder, computed from its results.csv and noise_floor.csv:
sliced W2 over the noise floor with each family's own sampler and with the fast samplers at
10 and 20 NFE, each mixture's mode spread, and the likelihood (paired where the data's density
is known, else less the entropy). Mean ± sd over the seeds.

    cd benchmarks/results/cpu-standard-six && python tables.py > tables.md
"""

from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
FAST = ("dpm", "unipc", "ipndm")


def _cell(values: pd.Series, digits: int) -> str:
    if values.isna().any():
        return "-"
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def _table(frame: pd.DataFrame, column: str, digits: int) -> pd.DataFrame:
    table = frame.groupby(["dataset", "family"], sort=False)[column].apply(_cell, digits=digits)
    return table.unstack("family")


def main() -> None:
    results = pd.read_csv(HERE / "results.csv")
    floor = pd.read_csv(HERE / "noise_floor.csv").groupby("dataset").sliced_w2.mean()
    results["ratio"] = results.sliced_w2 / results.dataset.map(floor)
    own = results[results.sampler == "default"]
    print("## Sliced W2 / floor, each family's own sampler\n")
    print(_table(own, "ratio", 2).to_markdown())
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


if __name__ == "__main__":
    main()
