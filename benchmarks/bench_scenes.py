"""Benchmark: how hard is the scene distribution -- the constant-polygon baseline, measured.

A good TF must exist for every scan, and the same polygon must not be good for every scan
(else an agent need not read the histogram). Measured in one run:

1. **best constant**: the one polygon that maximises the mean oracle score over the train
   scenes (:func:`tfgym.search.best_constant_action`, CEM, ``constant_budget`` candidates
   each scored on every train scene, ``constant_restarts`` seeds, the best mean kept; the
   train scenes' hand-made reference TFs are scored first as candidates, and odd restarts
   start around their mean);
2. **per-scene best**: CEM on each held-out scene (``cem_budget`` env evaluations per
   restart, ``cem_restarts`` seeds; even restarts start from the centre of the action box,
   odd ones around the scene's hand-made reference TF), the reference TF and the constant
   scored first as candidates, so the best is at least as good as both (``cem only`` is the
   best the search itself proposed);
3. **the hardness table**, per held-out scene: the best, the constant's score, its ratio to
   the best, and the reference TF's ratio; the summary against the issue's goals -- mean
   constant ratio <= 0.8, ratio <= 0.6 on at least a quarter of the scenes, every best
   >= 0.85 -- printed PASS or FAIL. ``headsq`` (the real scan, approximate labels) is an
   extra row outside the summary; with ``train_rows`` the constant's ratio on its own train
   scenes is measured too (a fit check: it should be high);
4. **variation factors** (:data:`tfgym.phantoms.factors.FACTORS`): for ``factor_seeds``, the
   target's (bone and teeth) cluster in the normalised joint histogram (``[0, 1] x [0, 1]``:
   intensity and gradient in bin units over the number of bins) of the phantom with every
   factor neutral vs with one factor active (and with all active): the mean shift of the
   cluster's centroid, the change of its spread, and how much the centroid varies across
   seeds.

Writes ``benchmarks/results/bench_scenes.json`` and a bar chart of the ratios per held-out
scene (``.png`` next to it). ``--quick`` shrinks everything for a smoke test; ``--workers``
processes run the searches of different scenes (and the constant's restarts) in parallel.

Usage::

    python benchmarks/bench_scenes.py                   # the full measurement (minutes)
    python benchmarks/bench_scenes.py --quick --out /tmp/scenes.json
"""

from __future__ import annotations

import inspect
import json
import multiprocessing
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import tyro
from _common import machine_info
from tqdm import tqdm

from tfgym.oracle import reference_action, resolve_target
from tfgym.phantoms import make_phantom
from tfgym.phantoms.factors import FACTORS
from tfgym.scene import Scene, resolve_scenes
from tfgym.scoring import SceneScorer, ScoringSettings
from tfgym.search import ConstantResult, CrossEntropySearch, best_constant_action


@dataclass
class Args:
    """Benchmark options (defaults: the issue's full measurement)."""

    out: Path = Path("benchmarks/results/bench_scenes.json")
    """JSON results; the figure goes next to it (same name, ``.png``)."""
    train: tuple[str, ...] = ("train",)
    """Scenes (or scene sets) the constant is fitted on."""
    heldout: tuple[str, ...] = ("heldout",)
    """Scenes (or scene sets) of the hardness table."""
    extra: tuple[str, ...] = ("headsq",)
    """Extra rows of the table (real scans), outside the summary."""
    quick: bool = False
    """Tiny sizes everywhere: a smoke test, not a measurement."""
    cem_budget: int = 1500
    """Env evaluations per CEM restart on each scene."""
    cem_restarts: int = 2
    """CEM restarts (seeds) per scene; the best is kept."""
    constant_budget: int = 1500
    """Candidate polygons per restart of the constant search (each scored on every scene)."""
    constant_restarts: int = 2
    """Restarts (seeds) of the constant search; the best train mean is kept."""
    population: int = 32
    """Population size of every search."""
    train_rows: bool = True
    """Also measure the constant's ratio on its own train scenes (CEM on each)."""
    working_size: int = 64
    """Working volume size of every scene."""
    image_size: int = 128
    """Rendering side of the oracle (the env's default)."""
    target: str = "bone"
    """Oracle target (its tissues are the factor part's cluster too)."""
    factor_seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7)
    """Phantom seeds of the variation-factor part (empty: skip it)."""
    workers: int = 2
    """Processes for the searches and the factor part (1: everything in this process)."""
    seed: int = 0
    """Seed of every search."""
    progress: bool = True
    """Show progress bars."""
    goal_mean_ratio: float = 0.8
    """Goal: the constant's mean ratio on the held-out scenes is at most this."""
    low_ratio: float = 0.6
    """A held-out scene is hard for the constant when its ratio is at most this ..."""
    goal_low_share: float = 0.25
    """... and at least this share of the held-out scenes must be hard."""
    goal_min_best: float = 0.85
    """Goal: every held-out scene's best score is at least this."""


def _quick(args: Args) -> Args:
    return replace(
        args,
        train=tuple(resolve_scenes(args.train)[:3]),
        heldout=tuple(resolve_scenes(args.heldout)[:2]),
        cem_budget=96,
        cem_restarts=1,
        constant_budget=64,
        constant_restarts=1,
        population=16,
        working_size=min(args.working_size, 48),
        image_size=min(args.image_size, 48),
        factor_seeds=args.factor_seeds[:1],
        workers=1,
    )


def scoring_settings(args: Args) -> ScoringSettings:
    """The scoring settings of every scene of the benchmark."""
    return ScoringSettings(
        working_size=args.working_size, image_size=args.image_size, target=args.target
    )


def _scorer(scene: str, settings: ScoringSettings) -> SceneScorer:
    return SceneScorer(scene, settings)


def _rng(seed: int, restart: int, name: str = "") -> np.random.Generator:
    """A generator per (seed, restart, scene name): results do not depend on scene order."""
    return np.random.default_rng([seed, restart, zlib.crc32(name.encode())])


def _map(
    fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]], workers: int, desc: str, bar: bool
) -> list[Any]:
    """``[fn(*job) for job in jobs]``, over ``workers`` processes when more than one."""
    progress = tqdm(total=len(jobs), desc=desc, unit="job", disable=not bar)
    try:
        if workers <= 1 or len(jobs) <= 1:
            out = []
            for job in jobs:
                out.append(fn(*job))
                progress.update(1)
            return out
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            futures = [pool.submit(fn, *job) for job in jobs]
            for future in futures:
                future.add_done_callback(lambda _: progress.update(1))
            return [f.result() for f in futures]
    finally:
        progress.close()


# ----------------------------------------------------------------- the constant and the bests
def _constant_job(
    scenes: tuple[str, ...], settings: ScoringSettings, args: Args, restart: int
) -> ConstantResult:
    scorers = [_scorer(s, settings) for s in scenes]
    initial = np.stack([reference_action(sc.scene, settings.target) for sc in scorers])
    # even restarts start from the centre of the box, odd ones around the mean reference TF
    around = {"init_mean": initial.mean(axis=0), "init_std": 0.3} if restart % 2 else {}
    return best_constant_action(
        scorers,
        args.constant_budget,
        _rng(args.seed, restart, "constant"),
        population_size=args.population,
        initial=initial,
        progress=args.progress,
        **around,
    )


def best_constant(args: Args, scenes: Sequence[str]) -> tuple[ConstantResult, list[float]]:
    """The best constant over ``scenes`` (the best of the restarts) and every restart's mean."""
    settings = scoring_settings(args)
    jobs = [(tuple(scenes), settings, args, r) for r in range(args.constant_restarts)]
    results = _map(_constant_job, jobs, args.workers, "constant restarts", args.progress)
    best = max(results, key=lambda r: r.mean_reward)
    return best, [r.mean_reward for r in results]


def _scene_job(
    scene: str, settings: ScoringSettings, args: Args, constant: np.ndarray
) -> dict[str, Any]:
    scorer = _scorer(scene, settings)
    ref = reference_action(scorer.scene, settings.target)
    ref_score, const_score = scorer.score(np.stack([ref, constant])).rewards.tolist()
    best, cem_only = max(ref_score, const_score), -np.inf
    for r in range(args.cem_restarts):
        # even restarts start from the centre of the box, odd ones around the reference TF
        around = {"init_mean": ref, "init_std": 0.3} if r % 2 else {}
        search = CrossEntropySearch(
            _rng(args.seed, r, scene), population_size=args.population, **around
        )
        result = search.run(
            scorer, args.cem_budget, initial=np.stack([ref, constant]), keep_all=True
        )
        assert result.rewards is not None
        cem_only = max(cem_only, float(result.rewards[2:].max(initial=-np.inf)))
        best = max(best, result.best_reward)
    return {
        "scene": scene,
        "labels_approximate": bool(scorer.scene.labels_approximate),
        "best": best,
        "cem_only_best": cem_only,
        "best_is_a_seed": bool(best > cem_only),
        "constant": const_score,
        "reference": ref_score,
        "ratio": const_score / best if best > 0 else float("nan"),
        "reference_ratio": ref_score / best if best > 0 else float("nan"),
        "evaluations": args.cem_restarts * args.cem_budget + 2,
    }


def scene_rows(args: Args, scenes: Sequence[str], constant: np.ndarray) -> list[dict[str, Any]]:
    """One row per scene: its best score (CEM), the constant's and the reference's, ratios."""
    settings = scoring_settings(args)
    jobs = [(s, settings, args, np.asarray(constant)) for s in scenes]
    return _map(_scene_job, jobs, args.workers, "per-scene CEM", args.progress)


def summarize(rows: Sequence[dict[str, Any]], args: Args) -> dict[str, Any]:
    """The summary of the held-out rows against the issue's goals."""
    ratios = np.array([r["ratio"] for r in rows], dtype=np.float64)
    bests = np.array([r["best"] for r in rows], dtype=np.float64)
    mean_ratio = float(ratios.mean())
    low_share = float(np.mean(ratios <= args.low_ratio))
    min_best = float(bests.min())
    return {
        "n_scenes": len(rows),
        "mean_ratio": mean_ratio,
        "median_ratio": float(np.median(ratios)),
        "min_ratio": float(ratios.min()),
        "low_share": low_share,
        "min_best": min_best,
        "mean_reference_ratio": float(np.mean([r["reference_ratio"] for r in rows])),
        "pass_mean_ratio": mean_ratio <= args.goal_mean_ratio,
        "pass_low_share": low_share >= args.goal_low_share,
        "pass_min_best": min_best >= args.goal_min_best,
    }


def print_table(
    title: str, rows: Sequence[dict[str, Any]], extra: Sequence[dict[str, Any]] = ()
) -> None:
    """The hardness table: one line per scene (extra rows marked), to stdout."""
    print(f"\n{title}")
    print(
        f"{'scene':<22} {'best':>6} {'cem only':>8} {'constant':>8} {'ratio':>6} "
        f"{'reference':>9} {'ref ratio':>9}"
    )
    for r in [*rows, *extra]:
        mark = " *" if r in extra else ""
        print(
            f"{r['scene'] + mark:<22} {r['best']:>6.3f} {r['cem_only_best']:>8.3f} "
            f"{r['constant']:>8.3f} {r['ratio']:>6.2f} {r['reference']:>9.3f} "
            f"{r['reference_ratio']:>9.2f}"
        )
    if extra:
        print("* extra row (real scan, approximate labels), not in the summary")


def print_summary(summary: dict[str, Any], args: Args) -> None:
    """The summary lines with PASS/FAIL against the goals."""

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    s = summary
    print(
        f"constant / best, mean over {s['n_scenes']} held-out scenes: {s['mean_ratio']:.3f} "
        f"(goal <= {args.goal_mean_ratio}): {verdict(s['pass_mean_ratio'])}"
    )
    print(
        f"share of held-out scenes with ratio <= {args.low_ratio}: {s['low_share']:.3f} "
        f"(goal >= {args.goal_low_share}): {verdict(s['pass_low_share'])}"
    )
    print(
        f"smallest held-out best: {s['min_best']:.3f} (goal >= {args.goal_min_best}): "
        f"{verdict(s['pass_min_best'])}"
    )
    print(f"reference TF / best, mean: {s['mean_reference_ratio']:.3f}")


# ------------------------------------------------------------------------ variation factors
def has_neutral() -> bool:
    """Whether ``make_phantom`` takes ``neutral=`` (the factor part needs it)."""
    return "neutral" in inspect.signature(make_phantom).parameters


def cluster(scene: Scene, tissues: Iterable[int]) -> dict[str, float]:
    """Centroid and spread of the tissues' voxels in the normalised joint histogram.

    Coordinates are intensity and gradient in bin units over the number of bins, clipped to
    ``[0, 1]`` as the histogram clamps them.
    """
    mask = np.isin(scene.labels, list(tissues))
    r = scene.ranges
    x = np.clip(r.intensity_to_bin(scene.volume.data[mask]) / r.n_intensity_bins, 0, 1)
    y = np.clip(r.gradient_to_bin(scene.gradient[mask]) / r.n_gradient_bins, 0, 1)
    return {
        "x": float(x.mean()),
        "y": float(y.mean()),
        "spread_x": float(x.std()),
        "spread_y": float(y.std()),
        "voxels": int(mask.sum()),
    }


def _factor_job(seed: int, size: int, target: str) -> dict[str, dict[str, float]]:
    tissues = [int(t) for t in resolve_target(target)]
    everything = set(FACTORS)
    configs: dict[str, set[str]] = {"neutral": everything, "all": set()}
    configs.update({name: everything - {name} for name in FACTORS})
    out = {}
    for name, neutral in configs.items():
        volume = make_phantom(seed, size=size, neutral=neutral)
        out[name] = cluster(Scene.from_volume(volume, working_size=size), tissues)
    return out


def factor_shifts(args: Args) -> list[dict[str, Any]] | None:
    """Per factor (and all together): how far it moves the target's cluster, over seeds.

    Returns:
        One row per factor, or None when ``make_phantom`` has no ``neutral=`` yet.
    """
    if not args.factor_seeds:
        return []
    if not has_neutral():
        return None
    jobs = [(seed, args.working_size, args.target) for seed in args.factor_seeds]
    per_seed = _map(_factor_job, jobs, args.workers, "factor phantoms", args.progress)
    rows = []
    for name in [*FACTORS, "all"]:
        base = [(s["neutral"]["x"], s["neutral"]["y"]) for s in per_seed]
        moved = [(s[name]["x"], s[name]["y"]) for s in per_seed]
        delta = np.subtract(moved, base)
        spread = [
            np.hypot(s[name]["spread_x"], s[name]["spread_y"])
            - np.hypot(s["neutral"]["spread_x"], s["neutral"]["spread_y"])
            for s in per_seed
        ]
        rows.append(
            {
                "factor": name,
                "mean_shift": float(np.hypot(*delta.T).mean()),
                "max_shift": float(np.hypot(*delta.T).max()),
                "mean_dx": float(delta[:, 0].mean()),
                "mean_dy": float(delta[:, 1].mean()),
                "spread_change": float(np.mean(spread)),
                "centroid_std_across_seeds": float(np.hypot(*np.std(moved, axis=0))),
                "per_seed": {
                    str(seed): s[name] for seed, s in zip(args.factor_seeds, per_seed, strict=True)
                },
            }
        )
    return rows


def print_factors(rows: list[dict[str, Any]] | None, args: Args) -> None:
    """The factor table, to stdout."""
    if rows is None:
        print("\nvariation factors: skipped, make_phantom has no neutral= argument yet")
        return
    if not rows:
        return
    print(
        f"\ntarget cluster in the normalised JH, {len(args.factor_seeds)} seeds: each factor "
        "alone vs all neutral"
    )
    print(
        f"{'factor':<16} {'mean shift':>10} {'max shift':>9} {'mean dx':>8} {'mean dy':>8} "
        f"{'spread +':>8} {'std/seeds':>9}"
    )
    for r in rows:
        print(
            f"{r['factor']:<16} {r['mean_shift']:>10.3f} {r['max_shift']:>9.3f} "
            f"{r['mean_dx']:>8.3f} {r['mean_dy']:>8.3f} {r['spread_change']:>8.3f} "
            f"{r['centroid_std_across_seeds']:>9.3f}"
        )


# ------------------------------------------------------------------------------ figure, main
def plot(record: dict[str, Any], path: Path) -> None:
    """Bar chart of the constant's and the reference's ratio per held-out scene, and bests."""
    from matplotlib.figure import Figure

    rows = record["heldout"] + record["extra"]
    args = record["args"]
    marks = [len(record["heldout"]) <= i for i in range(len(rows))]
    names = [
        r["scene"].replace("phantom-", "p") + " *" * m for r, m in zip(rows, marks, strict=True)
    ]
    x = np.arange(len(rows))
    fig = Figure(figsize=(max(7.0, 0.45 * len(rows) + 2), 6.0), layout="constrained")
    ax, ax_best = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    hatch = ["//" if m else "" for m in marks]  # extra rows (real scans), outside the summary
    ax.bar(x - 0.2, [r["ratio"] for r in rows], 0.4, hatch=hatch, label="best constant (train)")
    ax.bar(x + 0.2, [r["reference_ratio"] for r in rows], 0.4, hatch=hatch, label="hand-made ref.")
    goal, low = args["goal_mean_ratio"], args["low_ratio"]
    ax.axhline(goal, color="gray", ls="--", lw=1, label=f"goal: mean constant <= {goal}")
    ax.axhline(low, color="red", ls=":", lw=1, label=f"hard scene: constant <= {low}")
    ax.set_ylabel("score / per-scene best")
    ax.set_ylim(0, 1.05)
    fig.legend(loc="outside lower center", ncols=2, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    s = record["summary"]
    ax.set_title(
        f"held-out: mean constant ratio {s['mean_ratio']:.2f}, "
        f"{s['low_share']:.0%} of scenes <= {args['low_ratio']}"
    )
    ax_best.bar(x, [r["best"] for r in rows], 0.6, color="tab:green", hatch=hatch)
    ax_best.axhline(args["goal_min_best"], color="gray", ls="--", lw=1)
    ax_best.set_title(f"per-scene best (CEM), goal >= {args['goal_min_best']}", fontsize=9)
    ax_best.set_ylabel("oracle score")
    ax_best.set_ylim(0, 1.05)
    ax_best.set_xticks(x, names, rotation=60, fontsize=8)
    ax_best.grid(axis="y", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main(args: Args) -> dict[str, Any]:
    """Run every part, print the tables and write the JSON and the figure."""
    if args.quick:
        args = _quick(args)
    start = time.perf_counter()
    train, heldout = resolve_scenes(args.train), resolve_scenes(args.heldout)
    extra = resolve_scenes(args.extra) if args.extra else ()
    constant, restart_means = best_constant(args, train)
    print(
        f"\nbest constant over {len(train)} train scenes ({args.constant_restarts} x "
        f"{args.constant_budget} candidates): mean score {constant.mean_reward:.3f} "
        f"(restarts: {', '.join(f'{m:.3f}' for m in restart_means)})"
    )
    rows = scene_rows(args, [*heldout, *extra], constant.action)
    held_rows, extra_rows = rows[: len(heldout)], rows[len(heldout) :]
    summary = summarize(held_rows, args)
    print_table(
        f"held-out scenes: per-scene best (CEM {args.cem_restarts} x {args.cem_budget}) vs the "
        "best constant",
        held_rows,
        extra_rows,
    )
    print_summary(summary, args)
    train_rows = scene_rows(args, train, constant.action) if args.train_rows else []
    if train_rows:
        print_table("train scenes (a fit check): per-scene best vs the constant", train_rows)
        ratio = np.mean([r["ratio"] for r in train_rows])
        print(f"the constant on its own {len(train)} train scenes: mean ratio {ratio:.3f}")
    factors = factor_shifts(args)
    print_factors(factors, args)
    record = {
        "benchmark": "bench_scenes",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": time.perf_counter() - start,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()},
        "machine": machine_info(),
        "constant": {
            "action": constant.action.tolist(),
            "train_mean": constant.mean_reward,
            "train_scores": dict(
                zip(constant.scenes, constant.scene_rewards.tolist(), strict=True)
            ),
            "restart_means": restart_means,
            "n_candidates": constant.n_candidates,
            "best_per_iteration": [h.best_reward for h in constant.history],
        },
        "heldout": held_rows,
        "extra": extra_rows,
        "summary": summary,
        "train": train_rows,
        "train_mean_ratio": float(np.mean([r["ratio"] for r in train_rows]))
        if train_rows
        else None,
        "factors": factors,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"\nwrote {args.out}")
    plot(record, args.out.with_suffix(".png"))
    return record


if __name__ == "__main__":
    main(tyro.cli(Args))
