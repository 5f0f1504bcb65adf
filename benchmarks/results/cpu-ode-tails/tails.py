"""Where the deterministic samplers lose on the variance-preserving families: samples carried
far out of the data by the probability-flow ODE of the learned score.

Trains DDPM, VP, VE and flow matching on moons as the standard profile does (the toy preset,
6,000 steps, batch 256, seeds 0-2), draws 10,000 samples from each run with its own sampler,
DPM-Solver++(2M) at 100 NFE on the process's default grid, and the adaptive probability-flow
ODE (Diffrax Tsit5, rtol = atol = 1e-5), and counts the samples beyond the data's radius (the
largest norm among 100,000 true points). Prints one Markdown table.

    cd benchmarks/results/cpu-ode-tails && python tails.py > tails.md
"""

import diffrax
import jax
import numpy as np
import pandas as pd

import zoo

FAMILIES = ("ddpm", "vp", "ve", "flow")
SEEDS = (0, 1, 2)
STEPS = 6_000
N = 10_000
SAMPLERS = {
    "own": None,  # the preset's: ancestral, Euler-Maruyama (1,000 steps), Euler from t = 1
    "dpm-100": zoo.DPMSolverPP(steps=100),
    "ode-tsit5": zoo.ProbabilityFlow(diffrax.Tsit5()),
}


def main() -> None:
    data = zoo.data.moons()
    radius = float(
        np.linalg.norm(np.asarray(data.sample(jax.random.PRNGKey(1), (100_000,))), axis=-1).max()
    )
    rows = []
    for family in FAMILIES:
        preset = zoo.presets.toy(family, data, steps=STEPS)
        state, _ = zoo.train.fit(
            preset.model,
            data,
            steps=STEPS,
            seeds=SEEDS,
            batch_size=preset.batch_size,
            optimizer=preset.optimizer(),
        )
        for run, seed in enumerate(SEEDS):
            params = zoo.train.run_params(state, run)
            for name, sampler in SAMPLERS.items():
                chosen = preset.sampler if sampler is None else sampler
                x = preset.model.sample(params, jax.random.PRNGKey(7), (N,), chosen).x
                norm = np.linalg.norm(np.asarray(x), axis=-1)
                rows.append(
                    {
                        "family": family,
                        "seed": seed,
                        "sampler": name,
                        "beyond": int((norm > radius).sum()),
                        "farthest": float(norm.max() / radius),
                    }
                )
    table = pd.DataFrame(rows)
    print(
        f"Of {N:,} samples per run, how many lie beyond the data's radius ({radius:.2f}, the "
        "largest norm of 100,000 true points), and the farthest one's norm over that radius, "
        "seeds 0 / 1 / 2 (moons, 6,000 steps).\n"
    )
    joined = table.groupby(["family", "sampler"], sort=False).agg(
        beyond=("beyond", lambda v: " / ".join(f"{b:,}" for b in v)),
        farthest=("farthest", lambda v: " / ".join(f"{f:.2f}" for f in v)),
    )
    print(joined.reset_index().to_markdown(index=False))


if __name__ == "__main__":
    main()
