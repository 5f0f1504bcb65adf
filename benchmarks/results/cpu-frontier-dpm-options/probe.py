"""DPM-Solver++ variants at 5-20 NFE on the exact score (frontier judge): which option moves the
10-NFE nine-Gaussians cell toward 1.1x without losing the other data sets."""
import sys
import pandas as pd
from zoo.bench.commands import frontier

samplers = [
    "dpm", "dpm[lower_order_final=false]", "dpm[denoise=true]", "dpm[order=3,lower_order_final=false]",
    "dpm[grid=time]", "dpm[grid=quadratic,end=zero]", "ipndm", "unipc",
]
rows = frontier.run(["ddpm", "vp"], ["nine_gaussians", "gaussians_25", "8gaussians"], samplers, (5, 10, 20), 4000, log=lambda *a: None)
rows.to_csv("/tmp/runs/dpm_probe.csv", index=False)
med = rows.groupby(["process", "dataset", "sampler", "nfe"])[["ratio", "spread"]].median().reset_index()
for (p, d), g in med.groupby(["process", "dataset"]):
    t = g.pivot(index="sampler", columns="nfe", values=["ratio", "spread"]).round(2)
    print(f"## {p} {d}\n{t.to_string()}\n", flush=True)
