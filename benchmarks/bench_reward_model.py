"""Benchmark: the Bradley-Terry reward model (issue 4) -- accuracy, rank correlation, speed.

Parts (``--parts``, default all), each a table and an entry of the JSON:

a. **paper protocol** on one held-out phantom: the paper's 100 actions (10 expert, 40 shifted, 50
   random), 4000 pairs answered by the ``noisy`` simulated labeler, 75 epochs, for the
   paper-faithful model (``paper``) and the improved one (``mask``): accuracy on the held-out
   (10 %) unambiguous pairs against the labeler and against the noise-free oracle, and
   Spearman rho between RM reward and oracle score over 20,000 uniformly random actions;
b. **label allocation**: the same 4000 pairs over 100, 400 and 1000 distinct actions (the
   paper's 10/40/50 % mix scaled up): rho for each;
c. **multi-scene**: trained on pairs of the first 12 train phantoms, rho on each held-out
   phantom and on headsq, the real CT scan (approximate labels: its oracle is an
   approximation), and on the first train phantom for reference;
d. **label efficiency**: rho and held-out accuracy for 250 ... 4000 of part a's pairs (a
   table and a PNG plot);
e. **speed**: training time for 4000 pairs x 75 epochs (from part a, or trained here), and
   scoring 20,000 actions of one scene, against the named alternative of rendering them for
   the oracle score;
f. **multi-scene training speed**: ms per pair and epoch of training on pairs of one train
   phantom against the same number of pairs spread over 12 train phantoms, with
   scene-grouped minibatches (``TrainConfig.scenes_per_batch=1``, the default) and with the
   named alternative of random minibatches mixing all scenes (``scenes_per_batch=0``), and
   the held-out accuracy of each, so that speed is not bought with accuracy. Two timings:
   wall time of the median epoch (with its validation pass), and the process's CPU time of
   the whole training call (scenes loaded beforehand), which other processes on a shared
   machine disturb less.

The oracle scores of each scene's 20,000 random actions are computed once and shared by every
model. ``--quick`` shrinks everything for a smoke test (a few seconds per part).

Usage::

    python benchmarks/bench_reward_model.py                      # all parts, full size
    python benchmarks/bench_reward_model.py --parts a e
    python benchmarks/bench_reward_model.py --parts f \
        --out benchmarks/results/bench_reward_model_batching.json
    python benchmarks/bench_reward_model.py --quick --out /tmp/rm.json
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tyro
from _common import machine_info
from tqdm import tqdm

from reward_models.checkpoint import heldout_records
from reward_models.config import TrainConfig
from reward_models.data import PreferenceTensors
from reward_models.metrics import pair_accuracy, predict_batched, spearman_rho
from reward_models.train import train_reward_model
from tfgym.collect import CollectConfig, collect_multi, collect_preferences, paper_actions
from tfgym.scene import SCENE_SETS
from tfgym.scoring import SceneScorer, ScoringSettings

PARTS = ("a", "b", "c", "d", "e", "f")


@dataclass
class Args:
    """Benchmark options (defaults: the issue's full measurements)."""

    parts: tuple[str, ...] = PARTS
    """Parts to run, in this order: a (paper protocol), b (allocation), c (multi-scene), d
    (label efficiency), e (speed), f (multi-scene training speed)."""
    quick: bool = False
    """Tiny sizes everywhere: a smoke test, not a measurement."""
    out: Path = Path("benchmarks/results/bench_reward_model.json")
    """JSON results (rewritten after every part); the part-d plot goes next to it."""
    scene: str = "phantom-32"
    """Scene of parts a, b, d and e (the first held-out phantom)."""
    variants: tuple[str, ...] = ("paper", "mask")
    """Reward-model presets compared in every part."""
    labeler: str = "noisy"
    """Simulated labeler preset."""
    pairs: int = 4000
    """Comparisons per scene (parts a, b, d, e)."""
    epochs: int = 75
    """Training epochs."""
    n_random: int = 20000
    """Uniformly random actions per scene for Spearman rho."""
    allocation: tuple[int, ...] = (100, 400, 1000)
    """Distinct actions in part b."""
    label_sizes: tuple[int, ...] = (250, 500, 1000, 2000, 4000)
    """Numbers of pairs in part d (subsets of part a's pairs)."""
    multi_pairs_per_scene: int = 1000
    """Comparisons per train phantom in part c."""
    multi_train_scenes: int = 12
    """Train phantoms of part c (the first N of the train set; 12 as in issue 4's run)."""
    multi_test_scenes: int = 16
    """Held-out phantoms of part c (the first N of the held-out set), plus headsq."""
    multi_epochs: int = 75
    """Training epochs in part c."""
    image_size: int = 128
    """Rendering side for the oracle (the collect command's default)."""
    speed_repeats: int = 5
    """Timed repetitions of scoring in part e (the table shows the median)."""
    batching_pairs: int = 3600
    """Comparisons in part f, on one phantom and spread evenly over the 12 train phantoms."""
    batching_scenes: int = 12
    """Train phantoms of part f's multi-scene data."""
    batching_epochs: int = 30
    """Training epochs in part f."""
    batching_modes: tuple[int, ...] = (0, 1)
    """``TrainConfig.scenes_per_batch`` values timed in part f (0: random mixed batches)."""
    seed: int = 0
    """Seed of actions, answers, splits and weights."""
    progress: bool = True
    """Show progress bars."""


def _quick(args: Args) -> Args:
    return replace(
        args,
        pairs=300,
        epochs=3,
        n_random=400,
        allocation=(30, 60),
        label_sizes=(100, 300),
        multi_pairs_per_scene=100,
        multi_epochs=3,
        batching_pairs=240,
        batching_scenes=3,
        batching_epochs=2,
        image_size=32,
        speed_repeats=2,
    )


class Bench:
    """Scoring settings, each scene's random actions with their oracle scores, and data."""

    def __init__(self, args: Args) -> None:
        self.args = args
        self.settings = ScoringSettings(image_size=args.image_size)
        self._scorers: dict[str, SceneScorer] = {}
        self._random: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        self._records: dict[Any, list[Any]] = {}
        self._trained: dict[tuple[Any, ...], dict[str, Any]] = {}

    def rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.args.seed, *key])

    def scorer(self, scene: str) -> SceneScorer:
        """The scene's batch scorer at the benchmark's settings (built once)."""
        if scene not in self._scorers:
            self._scorers[scene] = SceneScorer(scene, self.settings)
        return self._scorers[scene]

    def random_set(self, scene: str) -> tuple[np.ndarray, np.ndarray, float]:
        """``(actions, oracle scores, seconds to render and score them)`` of a scene."""
        if scene not in self._random:
            dim = self.settings.action_dim
            salt = sum(map(ord, scene))
            acts = self.rng(1, salt).uniform(-1, 1, (self.args.n_random, dim)).astype(np.float32)
            start = time.perf_counter()
            scores = self.scorer(scene).oracle_scores(acts, progress=self.args.progress)
            self._random[scene] = (acts, scores, time.perf_counter() - start)
        return self._random[scene]

    def records(self, n_actions: int) -> list[Any]:
        """``args.pairs`` preferences on ``args.scene`` among ``n_actions`` paper actions."""
        if n_actions not in self._records:
            k = n_actions / 100
            rng = self.rng(2, n_actions)
            scorer = self.scorer(self.args.scene)
            actions = paper_actions(
                scorer,
                rng,
                n_expert=round(10 * k),
                n_shift=round(40 * k),
                n_random=n_actions - round(10 * k) - round(40 * k),
                expert_budget=max(256, 4 * round(10 * k)),
            )
            records = collect_preferences(
                scorer,
                actions,
                n_pairs=self.args.pairs,
                labeler=self.args.labeler,
                rng=rng,
            )
            # ids stand in for a store's: the checkpoint info names the held-out records
            self._records[n_actions] = [replace(r, id=i) for i, r in enumerate(records)]
        return self._records[n_actions]

    def rho(self, model: Any, scene: str) -> float:
        acts, scores, _ = self.random_set(scene)
        rewards = predict_batched(model, self.scorer(scene).observation, acts)
        return spearman_rho(rewards, scores)

    def train(
        self,
        records: list[Any],
        variant: str,
        epochs: int | None = None,
        *,
        tensors: PreferenceTensors | None = None,
        **config: Any,
    ) -> dict[str, Any]:
        """Train one model (once per data and settings); held-out accuracies, training time.

        Args:
            records: the preferences.
            variant: the model preset.
            epochs: training epochs (default ``args.epochs``).
            tensors: the records as arrays, built beforehand: the timing then leaves out
                loading the scenes.
            config: further :class:`TrainConfig` fields.
        """
        key = (id(records[0]), len(records), variant, epochs or self.args.epochs, *config.items())
        if key not in self._trained:
            self._trained[key] = self._train(records, variant, epochs, tensors, **config)
        return self._trained[key]

    def _train(
        self,
        records: list[Any],
        variant: str,
        epochs: int | None,
        tensors: PreferenceTensors | None,
        **extra: Any,
    ) -> dict[str, Any]:
        config = TrainConfig(
            epochs=epochs or self.args.epochs, variant=variant, seed=self.args.seed, **extra
        )
        data = records if tensors is None else tensors
        cpu = time.process_time()
        result = train_reward_model(data, config, progress=self.args.progress)
        cpu = time.process_time() - cpu
        held = heldout_records(records, result.info)
        acc = pair_accuracy(result.model, held, settings=self.settings)
        return {
            "model": result.model,
            "variant": variant,
            "n_pairs": len(records),
            "n_train": len(result.train),
            "n_ties": sum(r.mu == 0.5 for r in records),
            "epochs": config.epochs,
            "train_seconds": result.seconds,
            "train_cpu_seconds": cpu,
            "median_epoch_seconds": statistics.median(h.seconds for h in result.history),
            "scenes_per_batch": config.scenes_per_batch,
            "val_accuracy_labeler": acc["accuracy_labeler"],
            "val_accuracy_oracle": acc["accuracy_oracle"],
            "val_labeler_vs_oracle": acc["labeler_vs_oracle"],
            "n_val_unambiguous": acc["n_unambiguous"],
        }


def _row(trained: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {k: v for k, v in trained.items() if k != "model"} | extra


def part_a(bench: Bench) -> list[dict[str, Any]]:
    args = bench.args
    rows = []
    for variant in args.variants:
        t = bench.train(bench.records(100), variant)
        rows.append(_row(t, n_actions=100, rho=bench.rho(t["model"], args.scene)))
    print(f"\n(a) paper protocol on {args.scene}: {args.pairs} pairs, 100 actions, {args.labeler}")
    print(
        f"{'variant':<8} {'ties':>5} {'val acc (labeler)':>17} {'val acc (oracle)':>16} "
        f"{'labeler ceiling':>15} {'rho':>6} {'train s':>8}"
    )
    for r in rows:
        print(
            f"{r['variant']:<8} {r['n_ties']:>5} {r['val_accuracy_labeler']:>17.3f} "
            f"{r['val_accuracy_oracle']:>16.3f} {r['val_labeler_vs_oracle']:>15.3f} "
            f"{r['rho']:>6.3f} {r['train_seconds']:>8.1f}"
        )
    return rows


def part_b(bench: Bench) -> list[dict[str, Any]]:
    args = bench.args
    rows = []
    for n_actions in args.allocation:
        for variant in args.variants:
            t = bench.train(bench.records(n_actions), variant)
            rows.append(_row(t, n_actions=n_actions, rho=bench.rho(t["model"], args.scene)))
    print(
        f"\n(b) label allocation: {args.pairs} pairs over N distinct actions, rho on {args.scene}"
    )
    print(f"{'actions':>7} {'variant':<8} {'val acc (oracle)':>16} {'rho':>6}")
    for r in rows:
        print(
            f"{r['n_actions']:>7} {r['variant']:<8} {r['val_accuracy_oracle']:>16.3f} "
            f"{r['rho']:>6.3f}"
        )
    return rows


def part_c(bench: Bench) -> list[dict[str, Any]]:
    args = bench.args
    train_scenes = SCENE_SETS["train"][: 2 if args.quick else args.multi_train_scenes]
    heldout = SCENE_SETS["heldout"][: 1 if args.quick else args.multi_test_scenes]
    test_scenes = (*heldout, "headsq")  # the real CT scan: the gap to real data
    collect = CollectConfig(
        pairs=args.multi_pairs_per_scene,
        labeler=args.labeler,
        seed=int(bench.rng(3).integers(2**31)),
    )
    records = collect_multi(train_scenes, collect, settings=bench.settings, progress=args.progress)
    records = [replace(r, id=i) for i, r in enumerate(records)]
    rows = []
    for variant in args.variants:
        t = bench.train(records, variant, epochs=args.multi_epochs)
        for scene in (*test_scenes, train_scenes[0]):
            split = "real" if scene == "headsq" else "held-out" if scene in heldout else "train"
            rows.append(_row(t, scene=scene, split=split, rho=bench.rho(t["model"], scene)))
    print(
        f"\n(c) multi-scene: {args.multi_pairs_per_scene} pairs x {len(train_scenes)} train "
        f"phantoms, {args.multi_epochs} epochs; rho per scene"
    )
    print(f"{'variant':<8} {'scene':<11} {'split':<9} {'rho':>6} {'val acc (oracle)':>16}")
    for r in rows:
        print(
            f"{r['variant']:<8} {r['scene']:<11} {r['split']:<9} {r['rho']:>6.3f} "
            f"{r['val_accuracy_oracle']:>16.3f}"
        )
    return rows


def part_d(bench: Bench) -> list[dict[str, Any]]:
    args = bench.args
    records = bench.records(100)
    rows = []
    for n in args.label_sizes:
        for variant in args.variants:
            t = bench.train(records[:n], variant)
            rows.append(_row(t, n_actions=100, rho=bench.rho(t["model"], args.scene)))
    print(f"\n(d) label efficiency on {args.scene} (first N of part a's pairs)")
    print(
        f"{'pairs':>6} {'variant':<8} {'val acc (labeler)':>17} {'val acc (oracle)':>16} {'rho':>6}"
    )
    for r in rows:
        print(
            f"{r['n_pairs']:>6} {r['variant']:<8} {r['val_accuracy_labeler']:>17.3f} "
            f"{r['val_accuracy_oracle']:>16.3f} {r['rho']:>6.3f}"
        )
    _plot_label_efficiency(rows, args.out.with_name(args.out.stem + "_label_efficiency.png"))
    return rows


def _plot_label_efficiency(rows: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    ax_rho, ax_acc = fig.subplots(1, 2)
    for variant in dict.fromkeys(r["variant"] for r in rows):
        sel = [r for r in rows if r["variant"] == variant]
        n = [r["n_pairs"] for r in sel]
        ax_rho.plot(n, [r["rho"] for r in sel], "o-", label=variant)
        ax_acc.plot(n, [r["val_accuracy_oracle"] for r in sel], "o-", label=variant)
    sizes = sorted({r["n_pairs"] for r in rows})
    panels = (
        (ax_rho, "Spearman rho (random actions)", 0.8),
        (ax_acc, "held-out accuracy (oracle)", 0.85),
    )
    for ax, label, goal in panels:
        ax.axhline(goal, color="gray", linestyle="--", linewidth=1, label=f"goal {goal}")
        ax.set_xscale("log")
        ax.set_xticks(sizes, labels=[str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("preference pairs")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Reward model label efficiency")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def part_e(bench: Bench) -> list[dict[str, Any]]:
    args = bench.args
    obs = bench.scorer(args.scene).observation
    acts, _, oracle_seconds = bench.random_set(args.scene)
    rows = []
    for variant in args.variants:
        t = bench.train(bench.records(100), variant)  # part a's model when part a ran
        model = t["model"]
        predict_batched(model, obs, acts[:256])  # warm-up
        times = []
        for _ in range(args.speed_repeats):
            start = time.perf_counter()
            predict_batched(model, obs, acts)
            times.append(time.perf_counter() - start)
        score_s = statistics.median(times)
        rows.append(
            _row(
                t,
                n_score=len(acts),
                score_seconds=score_s,
                oracle_seconds=oracle_seconds,
                oracle_over_rm=oracle_seconds / score_s,
                torch_threads=torch.get_num_threads(),
            )
        )
    print(f"\n(e) speed ({torch.get_num_threads()} torch threads)")
    print(
        f"{'variant':<8} {'train (pairs x epochs)':>24} {'train s':>8} "
        f"{'score N':>8} {'RM s':>7} {'oracle s':>9} {'oracle/RM':>10}"
    )
    for r in rows:
        print(
            f"{r['variant']:<8} {str(r['n_pairs']) + ' x ' + str(r['epochs']):>24} "
            f"{r['train_seconds']:>8.1f} {r['n_score']:>8} {r['score_seconds']:>7.3f} "
            f"{r['oracle_seconds']:>9.1f} {r['oracle_over_rm']:>10.0f}"
        )
    return rows


def part_f(bench: Bench) -> list[dict[str, Any]]:
    args = bench.args
    scenes = SCENE_SETS["train"][: args.batching_scenes]
    seed = int(bench.rng(4).integers(2**31))

    def collect(names: tuple[str, ...], pairs: int) -> list[Any]:
        config = CollectConfig(pairs=pairs, labeler=args.labeler, seed=seed)
        records = collect_multi(names, config, settings=bench.settings, progress=args.progress)
        return [replace(r, id=i) for i, r in enumerate(records)]

    data = {
        "1 scene": collect(scenes[:1], args.batching_pairs),
        f"{len(scenes)} scenes": collect(scenes, args.batching_pairs // len(scenes)),
    }
    tensors = {name: PreferenceTensors.from_records(records) for name, records in data.items()}
    rows = []
    for variant in args.variants:
        warm_up = TrainConfig(epochs=1, variant=variant, val_fraction=0.0)
        train_reward_model(tensors["1 scene"], warm_up, progress=False)  # not timed
        for mode in args.batching_modes:  # interleaved: load drifts hit both data sets alike
            for name, records in data.items():
                t = bench.train(
                    records,
                    variant,
                    args.batching_epochs,
                    tensors=tensors[name],
                    scenes_per_batch=mode,
                )
                rows.append(
                    _row(
                        t,
                        data=name,
                        n_scenes=len(tensors[name].scene_names),
                        ms_per_pair_epoch=1e3 * t["median_epoch_seconds"] / t["n_train"],
                        cpu_ms_per_pair_epoch=1e3
                        * t["train_cpu_seconds"]
                        / (t["n_train"] * t["epochs"]),
                    )
                )
    for r in rows:  # against one scene's cost with the same batching
        one = next(
            o
            for o in rows
            if o["variant"] == r["variant"]
            and o["scenes_per_batch"] == r["scenes_per_batch"]
            and o["n_scenes"] == 1
        )
        r["over_one_scene"] = r["ms_per_pair_epoch"] / one["ms_per_pair_epoch"]
        r["cpu_over_one_scene"] = r["cpu_ms_per_pair_epoch"] / one["cpu_ms_per_pair_epoch"]
    print(
        f"\n(f) multi-scene training speed: {args.batching_pairs} pairs on 1 or "
        f"{len(scenes)} phantoms, {args.batching_epochs} epochs, {torch.get_num_threads()} "
        "torch threads; scenes/batch 0 = random batches mixing all scenes; ms per pair and "
        "epoch: wall (median epoch) and CPU (whole training)"
    )
    print(
        f"{'variant':<8} {'data':<10} {'scenes/batch':>12} {'wall ms':>8} "
        f"{'x 1 scene':>9} {'cpu ms':>7} {'x 1 scene':>9} {'val acc (labeler)':>17} "
        f"{'val acc (oracle)':>16}"
    )
    for r in rows:
        print(
            f"{r['variant']:<8} {r['data']:<10} {r['scenes_per_batch']:>12} "
            f"{r['ms_per_pair_epoch']:>8.4f} {r['over_one_scene']:>9.2f} "
            f"{r['cpu_ms_per_pair_epoch']:>7.4f} {r['cpu_over_one_scene']:>9.2f} "
            f"{r['val_accuracy_labeler']:>17.3f} {r['val_accuracy_oracle']:>16.3f}"
        )
    return rows


def main(args: Args) -> None:
    if args.quick:
        args = _quick(args)
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown parts {unknown}; valid: {list(PARTS)}")
    bench = Bench(args)
    record: dict[str, Any] = {
        "benchmark": "reward_model",
        "machine": machine_info(torch_threads=torch.get_num_threads()),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
        "parts": {},
    }
    runners = {"a": part_a, "b": part_b, "c": part_c, "d": part_d, "e": part_e, "f": part_f}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for part in tqdm(list(dict.fromkeys(args.parts)), desc="parts", disable=not args.progress):
        start = time.perf_counter()
        rows = runners[part](bench)
        record["parts"][part] = {"seconds": time.perf_counter() - start, "rows": rows}
        args.out.write_text(json.dumps(record, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main(tyro.cli(Args))
