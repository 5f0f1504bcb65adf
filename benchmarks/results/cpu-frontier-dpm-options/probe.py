"""DPM-Solver++ variants at 5-20 NFE on the exact score (frontier judge): which option moves the
10-NFE nine-Gaussians cell toward 1.1x without losing the other data sets. Writes
frontier.csv beside this file and prints the medians over the seeds (tables.txt)."""

from pathlib import Path

from zoo.bench.commands import frontier

SAMPLERS = [
    "dpm",
    "dpm[lower_order_final=false]",
    "dpm[denoise=true]",
    "dpm[order=3,lower_order_final=false]",
    "dpm[grid=time]",
    "dpm[grid=quadratic,end=zero]",
    "ipndm",
    "unipc",
]
DATASETS = ["nine_gaussians", "gaussians_25", "8gaussians"]

rows = frontier.run(["ddpm", "vp"], DATASETS, SAMPLERS, (5, 10, 20), 4000, log=lambda *a: None)
rows.to_csv(Path(__file__).parent / "frontier.csv", index=False)
columns = ["process", "dataset", "sampler", "nfe"]
med = rows.groupby(columns)[["ratio", "spread"]].median().reset_index()
for (process, dataset), group in med.groupby(["process", "dataset"]):
    table = group.pivot(index="sampler", columns="nfe", values=["ratio", "spread"]).round(2)
    print(f"## {process} {dataset}\n{table.to_string()}\n", flush=True)
