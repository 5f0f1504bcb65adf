"""Tables of this folder from the cache pieces the device run left (cache/cells, cache/runs'
metadata, cache/noise_floor), extracted before the device was given back:
``python extract.py CACHE_DIR`` writes cells.csv, training.csv and summary.md here."""

import glob
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

here, cache = Path(__file__).parent, Path(sys.argv[1])
COLUMNS = ["family", "dataset", "seed", "sampler", "status", "nfe", "sliced_w2", "energy", "w2",
           "mmd2", "precision", "recall", "modes_covered", "mode_kl", "spread", "nll_kl",
           "nll_kl_se", "train_s", "sample_s", "sampler_config"]  # fmt: skip
cells = pd.DataFrame([json.loads(Path(f).read_text())["content"]
                      for f in sorted(glob.glob(f"{cache}/cells/*/*/*.json"))])  # fmt: skip
cells = cells[COLUMNS].sort_values(["family", "dataset", "sampler", "seed"])
cells.to_csv(here / "cells.csv", index=False, float_format="%.6g")
runs = [(f.split("/")[-3], f.split("/")[-2], json.loads(Path(f).read_text())["metadata"])
        for f in sorted(glob.glob(f"{cache}/runs/*/*/*.json"))]  # fmt: skip
training = pd.DataFrame(
    [{"family": fam, "train_s": m["train_s"], "runs": m["train_runs"]} for fam, _, m in runs]
).drop_duplicates()
training.to_csv(here / "training.csv", index=False)
floor = {
    Path(f).name.rsplit("-", 1)[0]: np.median(
        [s["sliced_w2"] for s in json.loads(Path(f).read_text())["content"]["samples"]]
    )
    for f in glob.glob(f"{cache}/noise_floor/*.json")
}
cells["ratio"] = cells.sliced_w2 / cells.dataset.map(floor)
order = ["default"] + [f"{k}-{n}" for n in (5, 20, 100) for k in ("ddim", "dpm", "unipc", "ipndm")]
order += ["edm-3", "edm-10", "edm-50"]
ratio = cells.pivot_table(index="sampler", columns="family", values="ratio", aggfunc="median")
spread = cells[cells.spread.notna()].pivot_table(
    index="sampler", columns="family", values="spread", aggfunc="median"
)
with open(here / "summary.md", "w") as out:
    out.write(
        "Median over 6 datasets x 3 seeds of sliced W2 / the dataset's noise floor (the median "
        "sliced W2 between reference samples), by sampler (rows) and family:\n\n"
        + ratio.reindex(order).round(2).to_markdown()
        + "\n\nMedian spread (RMS Mahalanobis offset to the nearest mode; 1 = each mode's "
        "width) over the three Gaussian mixtures x 3 seeds:\n\n"
        + spread.reindex(order).round(2).to_markdown()
        + "\n\nTraining (18 vmapped runs: 6 datasets x 3 seeds, 48,000 steps), seconds:\n\n"
        + training.set_index("family").to_markdown()
        + "\n"
    )
