"""The README's tables of this folder, computed from its results.csv and noise_floor.csv:
sliced W2 over the noise floor with each family's own sampler and with the fast samplers at
10 and 20 NFE, each mixture's mode spread, and the likelihood (paired where the data's density
is known, else less the entropy), and flow matching against each other family. Mean ± sd over
the seeds.

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


def verdicts(frame: pd.DataFrame, column: str, lower_is_better: bool = True) -> pd.DataFrame:
    """Flow matching against each other family per dataset: better, worse or a tie, a
    difference counting where the means differ by more than twice the standard error of their
    difference (over the seeds of each)."""
    stats = frame.groupby(["dataset", "family"])[column].agg(["mean", "var", "count"])
    rows = []
    for dataset, part in stats.groupby(level="dataset", sort=False):
        part = part.droplevel("dataset")
        if "flow" not in part.index or part.loc["flow"].isna().any():
            continue
        flow = part.loc["flow"]
        for family, other in part.drop(index="flow").iterrows():
            diff = flow["mean"] - other["mean"]
            se = (flow["var"] / flow["count"] + other["var"] / other["count"]) ** 0.5
            better = diff < -2 * se if lower_is_better else diff > 2 * se
            worse = diff > 2 * se if lower_is_better else diff < -2 * se
            verdict = "better" if better else "worse" if worse else "tie"
            rows.append({"dataset": dataset, "family": family, "verdict": verdict})
    table = pd.DataFrame(rows).pivot(index="dataset", columns="family", values="verdict")
    families = [f for f in dict.fromkeys(frame.family) if f in table.columns]
    return table.reindex(index=[d for d in dict.fromkeys(frame.dataset) if d in table.index],
                         columns=families)  # fmt: skip


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
    print("\n## Flow matching against each family (difference beyond 2 standard errors)\n")
    print("Sliced W2, own samplers:\n")
    print(verdicts(own, "ratio").to_markdown())
    print("\nExcess NLL over the entropy:\n")
    print(verdicts(own, "excess_nll").to_markdown())


if __name__ == "__main__":
    main()
