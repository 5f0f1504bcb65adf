"""Training throughput of flow matching beside DDPM on the same network (the toy presets,
batch 256, adamw): the speed benchmark's fused loop (``zoo.bench.commands.speed.fused_loop``,
at the time ``benchmarks.speed``) for one run, each model timed at N and 3N steps and the rate
taken from the difference (which cancels compiling); the models interleaved in each repeat, the
median of the paired ratios reported.

    python benchmarks/results/cpu-flow-throughput/measure.py [N] [REPEATS] > result.md
"""

import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import zoo
from zoo import presets
from zoo.bench.commands.speed import fused_loop

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
flow = presets.toy("flow")
models = {
    "ddpm": presets.toy("ddpm").model,
    "flow": flow.model,
    "flow, OT coupling": zoo.transform(zoo.FlowMatching, net=presets.TOY_NET, coupling="ot"),
}
x = np.asarray(flow.data.train_set(10_000))
keys = jnp.stack([jax.random.PRNGKey(0)])
loops = {
    name: {n: fused_loop(m, x, 256, flow.optimizer(), 1, n) for n in (steps, 3 * steps)}
    for name, m in models.items()
}
for fns in loops.values():  # compile all
    for fn in fns.values():
        jax.block_until_ready(fn(keys))


def rate(fns):
    times = []
    for n in (steps, 3 * steps):
        start = time.perf_counter()
        jax.block_until_ready(fns[n](keys))
        times.append(time.perf_counter() - start)
    return 2 * steps / (times[1] - times[0])


rates = {name: [] for name in loops}
for _ in range(repeats):
    for name, fns in loops.items():
        rates[name].append(rate(fns))
print(
    f"{steps} and {3 * steps} steps, {repeats} interleaved repeats, jax {jax.__version__}, "
    f"{jax.devices()[0].platform}\n"
)
print("| model | steps/s (median) | ratio to ddpm (median of paired) | paired ratios, min-max |")
print("|---|---|---|---|")
for name, values in rates.items():
    ratios = np.asarray(values) / np.asarray(rates["ddpm"])
    print(
        f"| {name} | {statistics.median(values):,.0f} | {statistics.median(ratios):.3f} "
        f"| {ratios.min():.3f}-{ratios.max():.3f} |"
    )
