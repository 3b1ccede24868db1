"""``tfgym train-rm`` and ``tfgym eval-rm``: the reward-model pipeline's commands.

Both import ``reward_models`` (and so torch) only when they run; their options come from
``reward_models.config.TrainConfig`` and ``EvalConfig``, which import no torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reward_models.config import EvalConfig, TrainConfig
from tfgym.cli.common import CliError, add_command
from tfgym.cli.options import add_config_options

__all__ = ["register"]


def _records(db: str, *, allow_empty: bool = False) -> list[Any]:
    from tfgym.preferences import PreferenceStore

    if not Path(db).is_file():
        raise CliError(f"preference store not found: {db}")
    with PreferenceStore(db) as store:
        records = store.records()
    if not records and not allow_empty:
        raise CliError(f"{db} holds no preferences")
    return records


def _train(args: argparse.Namespace) -> int:
    from reward_models.train import train_reward_model

    config = TrainConfig(**args.command_spec.values(args, "train"))
    records = _records(args.db)
    result = train_reward_model(records, config, log_dir=args.logdir, progress=not args.no_progress)
    out = result.save(args.out)
    last, used = result.history[-1], result.config
    print(
        f"trained {used.ensemble_size} x {used.variant} on {len(result.train)} pairs "
        f"({len(result.validation)} held out) at working size {used.working_size}, "
        f"{used.histogram_bins} bins, in {result.seconds:.1f} s: train loss {last.loss:.3f}, "
        f"accuracy {last.accuracy:.3f}, validation loss {last.val_loss:.3f}, accuracy "
        f"{last.val_accuracy:.3f}"
    )
    print(f"wrote {out}")
    if args.logdir:
        print(f"TensorBoard: tensorboard --logdir {args.logdir}")
    return 0


def _checkpoint(args: argparse.Namespace) -> str:
    """The checkpoint named positionally or with --model (one of them, once)."""
    given = [c for c in (args.checkpoint, args.model) if c]
    if not given:
        raise CliError("name the reward model checkpoint: tfgym eval-rm CHECKPOINT or --model")
    if len(given) == 2 and given[0] != given[1]:
        raise CliError(f"two checkpoints named: {given[0]} and --model {given[1]}; name one")
    return given[0]


def _eval(args: argparse.Namespace) -> int:
    from reward_models.evaluate import evaluate_checkpoint

    config = EvalConfig(**args.command_spec.values(args, "eval"))
    if config.n_random < 2:
        raise CliError(f"--n-random must be at least 2, got {config.n_random}")
    path = _checkpoint(args)
    records = [] if args.db is None else _records(args.db, allow_empty=True)
    metrics = evaluate_checkpoint(
        path,
        records,
        args.scene,
        config,
        out_dir=args.out,
        log_dir=args.logdir,
        device=args.device,
        progress=not args.no_progress,
    )

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}"

    stored = metrics["pair_labels"] == "preferences"
    print(f"source: {metrics['source']}\n")
    print(f"{'metric':<36} value")
    pairs = "held-out pairs" if config.pairs == "heldout" else "pairs"
    pairs = pairs if stored else "oracle-labelled pairs"
    print(f"{pairs + ' (unambiguous)':<36} {metrics['n_pairs']} ({metrics['n_unambiguous']})")
    if stored:
        print(f"{'accuracy vs labeler':<36} {fmt(metrics['accuracy_labeler'])}")
    print(f"{'accuracy vs oracle':<36} {fmt(metrics['accuracy_oracle'])}")
    if stored:
        print(f"{'labeler vs oracle (ceiling)':<36} {fmt(metrics['labeler_vs_oracle'])}")
    n_actions = metrics["n_actions"]
    if n_actions is not None:
        label = f"Spearman rho, {n_actions} eval actions"
        print(f"{label:<36} {fmt(metrics['spearman_rho_actions'])}")
    print(f"{'Spearman rho, random actions':<36} {fmt(metrics['spearman_rho'])}")
    print(f"{'RM scoring time, random actions':<36} {metrics['seconds_predict']:.2f} s")
    if metrics["labels_approximate"]:
        print(
            "\nnote: the oracle judged approximate labels (intensity classes of an unlabelled "
            "scan): its scores, and the rho and accuracies against it, are approximate"
        )
    print(f"\nwrote {args.out}/ (metrics.json, {', '.join(metrics['files'])} PNGs)")
    if args.logdir:
        print(f"TensorBoard: tensorboard --logdir {args.logdir}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``train-rm`` and ``eval-rm``."""
    p, command = add_command(
        subparsers,
        "train-rm",
        _train,
        help="train a Bradley-Terry reward model on a preference store",
        description="Train a reward model (the paper's protocol by default: eq. 2 "
        "cross-entropy, Adam, batch 128, 75 epochs) on every record of a preference store "
        "and save a checkpoint. The observations are rebuilt exactly as the preferences "
        "were labeled (working size, histogram bins); naming other values is an error.",
    )
    p.add_argument("--db", required=True, help="preference store (SQLite file)")
    p.add_argument("--out", required=True, help="checkpoint file to write (e.g. rm.pt)")
    p.add_argument("--logdir", help="TensorBoard folder")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    command.add_group("train", add_config_options(p, TrainConfig))
    command.options.update(db="--db", out="--out")

    p, command = add_command(
        subparsers,
        "eval-rm",
        _eval,
        help="evaluate a reward model against the oracle: metrics, figures, TensorBoard",
        description="Evaluate a reward-model checkpoint on one scene: accuracy on held-out "
        "preference pairs (against the labeler and the noise-free oracle), Spearman rho "
        "between reward and oracle score over the pairs' actions and over random actions, "
        "and the paper's figures (reward histogram, corner-point plots, 12 TFs sorted by "
        "reward, rendered at display quality from several views), written as PNGs with "
        "metrics.json under --out. A scene without stored preferences (no --db, or none of "
        "the scene in it: a held-out phantom, headsq, a scan) is evaluated on the paper's "
        "action set generated for it, every pair labelled by the noise-free oracle "
        "(approximate labels on unlabelled scans); the output names the source.",
    )
    p.add_argument("checkpoint", nargs="?", help="reward model checkpoint (from train-rm)")
    p.add_argument("--model", help="the checkpoint, as an option")
    p.add_argument(
        "--db",
        help="preference store the model was trained on (default: none; evaluate on the "
        "paper's action set generated for the scene)",
    )
    p.add_argument("--scene", required=True, help="scene name or scan path")
    p.add_argument("--out", default="runs/eval", help="output folder (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device of the model (default: cpu)")
    p.add_argument("--logdir", help="TensorBoard folder")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    command.add_group("eval", add_config_options(p, EvalConfig))
    command.options.update(model="--model", db="--db", scene="--scene")
