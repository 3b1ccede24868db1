"""Settings of the reward-model pipeline: architecture, training and evaluation (no torch).

* :class:`RewardModelConfig` and :data:`RM_PRESETS` / :func:`model_config` -- the
  architecture of :class:`reward_models.model.RewardModel`;
* :class:`TrainConfig` -- the training protocol (defaults: the paper's);
* :class:`EvalConfig` -- the evaluation against the oracle;
* :data:`PREDICT_CHUNK` -- actions per model call when scoring many actions.

Every field of :class:`TrainConfig` and :class:`EvalConfig` carries ``metadata["help"]``, one
lower-case line, and where needed ``"flag"`` (the command-line flag, when it is not the
field's name with dashes), ``"choices"`` and ``"default_help"`` (how to show a None default);
``TrainConfig.model`` is marked ``"cli": False`` (a nested config, not an option). The command
line builds its options from these fields, so every default is written here once.

Importing this module imports neither torch nor the rest of the package.

Example:
    >>> TrainConfig(variant="tiny").architecture(histogram_bins=32, n_vertices=4).jh_features
    32
    >>> EvalConfig(n_random=1)
    Traceback (most recent call last):
    ...
    ValueError: n_random must be at least 2, got 1
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

__all__ = [
    "EVAL_PAIRS",
    "PREDICT_CHUNK",
    "RM_PRESETS",
    "VARIANTS",
    "EvalConfig",
    "RewardModelConfig",
    "TrainConfig",
    "model_config",
]

VARIANTS = ("paper", "mask")
PREDICT_CHUNK = 4096
"""Actions per model call when scoring many (bounds the memory of the mask rasters)."""
EVAL_PAIRS = ("heldout", "all")
"""Which preference pairs :class:`EvalConfig` measures accuracy on."""


@dataclass(frozen=True)
class RewardModelConfig:
    """Architecture of a :class:`reward_models.model.RewardModel`.

    Attributes:
        variant: ``"paper"`` (JH + vertex coordinates) or ``"mask"`` (also the polygon mask).
        histogram_bins: bins per JH axis; the JH image is ``(1, bins, bins)``.
        n_vertices: polygon vertices; actions have ``2 * n_vertices`` numbers.
        conv_channels: output channels of the JH branch's conv layers (each halves the size).
        dropout: dropout probability after each conv layer (the paper's 0.5).
        jh_pool: the JH branch's last feature map is average-pooled to ``jh_pool x jh_pool``.
        action_hidden: hidden widths of the action MLP (its output matches the JH features).
        head_hidden: hidden widths of the head MLP.
        mask_channels: channels of the per-bin feature map (mask variant).
        mask_subrows: sub-rows per bin row when rasterising the mask (mask variant).
    """

    variant: str = "paper"
    histogram_bins: int = 64
    n_vertices: int = 4
    conv_channels: tuple[int, ...] = (16, 32, 32)
    dropout: float = 0.5
    jh_pool: int = 2
    action_hidden: tuple[int, ...] = (64,)
    head_hidden: tuple[int, ...] = (128,)
    mask_channels: int = 32
    mask_subrows: int = 2

    def __post_init__(self) -> None:
        """Validate and normalise (sequences become tuples)."""
        for name in ("conv_channels", "action_hidden", "head_hidden"):
            object.__setattr__(self, name, tuple(int(c) for c in getattr(self, name)))
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown reward model variant {self.variant!r}; valid: {VARIANTS}")
        if self.n_vertices < 3:
            raise ValueError(f"n_vertices must be at least 3, got {self.n_vertices}")
        if not self.conv_channels or min(self.conv_channels) < 1:
            raise ValueError(f"conv_channels must be positive, got {self.conv_channels}")
        smallest = self.histogram_bins // 2 ** len(self.conv_channels)
        if self.histogram_bins < 8 or smallest < self.jh_pool or self.jh_pool < 1:
            raise ValueError(
                f"histogram_bins={self.histogram_bins} is too small for "
                f"{len(self.conv_channels)} pooled conv layers and jh_pool={self.jh_pool}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.mask_channels < 1 or self.mask_subrows < 1:
            raise ValueError("mask_channels and mask_subrows must be at least 1")

    @property
    def action_dim(self) -> int:
        """Action size ``2 * n_vertices``."""
        return 2 * self.n_vertices

    @property
    def jh_features(self) -> int:
        """Size of the JH branch's flattened output."""
        return self.conv_channels[-1] * self.jh_pool**2

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for checkpoints and JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RewardModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(
                f"unknown reward model config fields {unknown}; valid: {sorted(known)}"
            )
        return cls(**d)


RM_PRESETS: dict[str, RewardModelConfig] = {
    "paper": RewardModelConfig(variant="paper"),
    "mask": RewardModelConfig(variant="mask"),
    "tiny": RewardModelConfig(
        variant="paper", conv_channels=(4, 8), jh_pool=2, action_hidden=(16,), head_hidden=(16,)
    ),
    "tiny-mask": RewardModelConfig(
        variant="mask",
        conv_channels=(4, 8),
        jh_pool=2,
        action_hidden=(16,),
        head_hidden=(16,),
        mask_channels=4,
    ),
}


def model_config(name: str, **overrides: Any) -> RewardModelConfig:
    """A preset of :data:`RM_PRESETS` by name, with optional field overrides.

    Raises:
        ValueError: for an unknown preset name (the message lists the valid ones).

    Example:
        >>> model_config("mask", histogram_bins=32).histogram_bins
        32
    """
    if name not in RM_PRESETS:
        raise ValueError(f"unknown reward model preset {name!r}; valid: {sorted(RM_PRESETS)}")
    return RewardModelConfig(**{**RM_PRESETS[name].to_dict(), **overrides})


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


@dataclass
class TrainConfig:
    """Reward-model training settings (defaults: the paper's protocol).

    The observation settings -- working size, histogram bins and polygon vertices -- follow
    the preferences (each record's :class:`tfgym.observation.ObservationSettings`; records
    without settings: working size 64, 64 bins). A value given here is a check: training
    raises :class:`tfgym.observation.ObservationMismatchError` when the preferences were
    labeled at another one. ``histogram_bins`` is explicit when set here or when ``model``
    is given (an explicit architecture fixes its bins and vertices).

    Attributes:
        epochs: passes over the training split.
        batch_size: pairs per gradient step.
        scenes_per_batch: the most scenes whose pairs share one minibatch (0: no limit, a
            plain random permutation that mixes pairs of all scenes). The model runs its
            JH branches once per scene in a batch, so a batch of pairs from k scenes costs
            about k single-scene steps; with the limit each scene's pairs are shuffled, cut
            into chunks of at most ``batch_size // scenes_per_batch`` pairs, the chunks are
            shuffled and each batch joins ``scenes_per_batch`` of them (see
            :func:`reward_models.train.scene_batches`). With the default, 1, 3,600 pairs
            over 12 phantoms cost 1.3-1.4x one phantom's 3,600 per pair and epoch, against
            4.9-5.7x with 0, at the same held-out accuracy (part f of
            ``benchmarks/bench_reward_model.py``). One scene trains the same either way.
        lr: Adam learning rate (Adam's default).
        val_fraction: share of pairs held out for validation.
        seed: seeds the split, the bootstrap resamples, the shuffling and the weights.
        variant: the architecture, a preset of :data:`RM_PRESETS` (used when ``model`` is
            None).
        histogram_bins: JH bins per axis; None: as the preferences were labeled.
        working_size: voxels along the working volume's longest side; None: as the
            preferences were labeled.
        ensemble_size: members; more than one trains each on a bootstrap resample.
        device: torch device.
        num_threads: torch CPU threads, set process-wide (None: leave torch's setting). One
            by default: the model's ops are small, and on the 2-core CPU two threads made the
            paper protocol 9x slower (219 s vs 24 s) whenever other processes were busy.
        model: an explicit architecture instead of ``variant`` (its ``histogram_bins`` and
            ``n_vertices`` must match the preferences').
    """

    epochs: int = field(default=75, metadata=_help("passes over the training pairs"))
    batch_size: int = field(default=128, metadata=_help("pairs per gradient step"))
    scenes_per_batch: int = field(
        default=1, metadata=_help("most scenes per minibatch (0: pairs of all scenes mixed)")
    )
    lr: float = field(default=1e-3, metadata=_help("Adam learning rate"))
    val_fraction: float = field(default=0.1, metadata=_help("held-out share of pairs"))
    seed: int = field(default=0, metadata=_help("random seed"))
    variant: str = field(default="paper", metadata=_help("model preset", choices=tuple(RM_PRESETS)))
    histogram_bins: int | None = field(
        default=None,
        metadata=_help(
            "joint-histogram bins per axis",
            flag="--bins",
            default_help="as the preferences were labeled",
        ),
    )
    working_size: int | None = field(
        default=None,
        metadata=_help(
            "voxels along the longest side", default_help="as the preferences were labeled"
        ),
    )
    ensemble_size: int = field(
        default=1, metadata=_help("ensemble members (bootstrap)", flag="--ensemble")
    )
    device: str = field(default="cpu", metadata=_help("torch device"))
    num_threads: int | None = field(
        default=1, metadata=_help("torch CPU threads", flag="--threads")
    )
    model: RewardModelConfig | None = field(
        default=None,
        metadata=_help("an explicit architecture instead of the variant's", cli=False),
    )

    def __post_init__(self) -> None:
        """Validate."""
        if self.epochs < 1 or self.batch_size < 1 or self.ensemble_size < 1:
            raise ValueError("epochs, batch_size and ensemble_size must be at least 1")
        if not 0 <= self.scenes_per_batch <= self.batch_size:
            raise ValueError(
                f"scenes_per_batch must be in [0, batch_size={self.batch_size}], "
                f"got {self.scenes_per_batch}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.model is None and self.variant not in RM_PRESETS:
            raise ValueError(
                f"unknown reward model preset {self.variant!r}; valid: {sorted(RM_PRESETS)}"
            )
        if self.working_size is not None and self.working_size < 8:
            raise ValueError(f"working_size must be at least 8, got {self.working_size}")
        if (
            self.model is not None
            and self.histogram_bins is not None
            and self.model.histogram_bins != self.histogram_bins
        ):
            raise ValueError(
                f"histogram_bins={self.histogram_bins} contradicts the model's "
                f"histogram_bins={self.model.histogram_bins}"
            )

    @property
    def requested_bins(self) -> int | None:
        """The explicitly requested histogram bins (``histogram_bins`` or the model's)."""
        if self.histogram_bins is not None:
            return self.histogram_bins
        return None if self.model is None else self.model.histogram_bins

    @property
    def requested_vertices(self) -> int | None:
        """The explicitly requested polygon vertices (the model's, when given)."""
        return None if self.model is None else self.model.n_vertices

    def architecture(self, *, histogram_bins: int, n_vertices: int) -> RewardModelConfig:
        """The model config to train for data of these settings.

        Raises:
            ValueError: the architecture does not fit (e.g. too few bins for its layers).
        """
        base = self.model if self.model is not None else RM_PRESETS[self.variant]
        return replace(base, histogram_bins=histogram_bins, n_vertices=n_vertices)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the model config nested, None when not given)."""
        return asdict(self)


@dataclass
class EvalConfig:
    """Reward-model evaluation settings (see :func:`reward_models.evaluate.evaluate_checkpoint`).

    Attributes:
        n_random: uniformly random actions for Spearman's rho and the reward histogram.
        grid: positions per axis of the moving vertex in the corner-point figure.
        seed: seeds the random actions and, without stored preferences, the generated ones.
        pairs: ``"heldout"`` (the training's validation pairs) or ``"all"`` (every pair of
            the scene) for the pairwise accuracy.
        image_size: rendering side for the oracle score.
        display_size: voxels along the longest side of the display volume the figures'
            renderings are made on (:data:`tfgym.display.DISPLAY_WORKING_SIZE`; the scores
            stay at the training working size).
        views: camera views of each TF in the figures (:data:`tfgym.display.DISPLAY_VIEWS`).
    """

    n_random: int = field(default=20000, metadata=_help("random actions for Spearman rho"))
    grid: int = field(
        default=32, metadata=_help("vertex positions per axis in the corner-point figure")
    )
    seed: int = field(default=0, metadata=_help("seed of the random and generated actions"))
    pairs: str = field(
        default="heldout",
        metadata=_help(
            "pairs for accuracy: the training's validation pairs (by record id) or every "
            "pair of the scene",
            choices=EVAL_PAIRS,
        ),
    )
    image_size: int = field(default=128, metadata=_help("rendering side for the oracle"))
    # the defaults of tfgym.display, written out: this module imports nothing of tfgym
    display_size: int = field(
        default=256, metadata=_help("voxels along the longest side of the figures' volume")
    )
    views: tuple[str, ...] = field(
        default=("front", "side"), metadata=_help("camera views of the figures' renderings")
    )

    def __post_init__(self) -> None:
        """Validate."""
        self.views = (self.views,) if isinstance(self.views, str) else tuple(self.views)
        if not self.views:
            raise ValueError("views must name at least one view")
        if self.display_size < 8:
            raise ValueError(f"display_size must be at least 8, got {self.display_size}")
        if self.n_random < 2:
            raise ValueError(f"n_random must be at least 2, got {self.n_random}")
        if self.grid < 2:
            raise ValueError(f"grid must be at least 2, got {self.grid}")
        if self.pairs not in EVAL_PAIRS:
            raise ValueError(f"pairs must be one of {EVAL_PAIRS}, got {self.pairs!r}")
        if self.image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {self.image_size}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)
