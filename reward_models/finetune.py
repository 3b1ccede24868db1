"""Fine-tuning a reward model on people's answers, as the asynchronous human backend does.

:func:`answer_tensors` turns answered comparisons (scene, the two actions, the answer ``mu``)
into :class:`~reward_models.data.PreferenceTensors`; :func:`fine_tune` trains a copy of a
model (or of each member of an ensemble) on them with the Bradley-Terry loss
(:func:`~reward_models.loss.bradley_terry_loss`) and Adam, one scene per minibatch
(:func:`~reward_models.train.scene_batches`), and leaves the model it was given untouched.
Each member of an ensemble trains on its own bootstrap resample of the answers, so the members
keep disagreeing where the answers leave them free to, which is what disagreement-based query
selection (:mod:`reward_models.query_selection`) needs.

:class:`reward_models.human_async.AsyncHumanBackend` always fine-tunes the checkpoint's
model on all answers so far (not the last fine-tuned model again), so that a model is a
function of the answers, without the drift of training a fine-tuned model again on the same
answers; a fine-tuning can be stopped between minibatches by an event.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from reward_models.data import PreferenceTensors
from reward_models.loss import bradley_terry_loss
from reward_models.model import RewardEnsemble, RewardModel
from reward_models.train import scene_batches

__all__ = ["answer_tensors", "fine_tune"]


def answer_tensors(
    answers: Sequence[tuple[str, np.ndarray, np.ndarray, float]],
    observations: Mapping[str, np.ndarray],
    *,
    working_size: int | None = None,
) -> PreferenceTensors:
    """Answered comparisons as training pairs.

    Args:
        answers: ``(scene, action_a, action_b, mu)`` per answer; actions flat float32
            ``(2 * n_vertices,)``, ``mu`` 1 (a better), 0.5 (about equal) or 0 (b better).
        observations: scene name -> its JH image, uint8 ``(1, bins, bins)``.
        working_size: the working size the observations were built at (None: unknown).

    Returns:
        The pairs, scenes in order of first appearance.

    Raises:
        KeyError: a scene without an observation.
        ValueError: no answers, or arrays of inconsistent shapes.

    Example:
        >>> jh = {"s": np.zeros((1, 8, 8), np.uint8), "t": np.ones((1, 8, 8), np.uint8)}
        >>> a, b = np.zeros(8, np.float32), np.full(8, 0.5, np.float32)
        >>> data = answer_tensors([("t", a, b, 1.0), ("s", b, a, 0.5), ("t", b, a, 0.0)], jh)
        >>> data.scene_names, data.scene_index.tolist(), data.mu.tolist()
        (('t', 's'), [0, 1, 0], [1.0, 0.5, 0.0])
    """
    if not answers:
        raise ValueError("no answers to train on")
    names = tuple(dict.fromkeys(scene for scene, *_ in answers))
    rows = {name: k for k, name in enumerate(names)}
    return PreferenceTensors(
        scene_names=names,
        observations=np.stack([observations[name] for name in names]),
        scene_index=np.array([rows[scene] for scene, *_ in answers], dtype=np.int64),
        action_a=np.stack([a for _, a, _, _ in answers]),
        action_b=np.stack([b for _, _, b, _ in answers]),
        mu=np.array([mu for *_, mu in answers], dtype=np.float32),
        working_size=working_size,
    )


def fine_tune(
    model: RewardModel | RewardEnsemble,
    data: PreferenceTensors,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
    stop: threading.Event | None = None,
) -> RewardModel | RewardEnsemble | None:
    """A fine-tuned copy of a reward model; the model given is left as it was.

    Args:
        model: a model, or an ensemble whose members each train on a bootstrap resample.
        data: the training pairs (e.g. from :func:`answer_tensors`).
        epochs: passes over the pairs (each member's resample).
        lr: Adam's learning rate.
        batch_size: pairs per step; each minibatch holds one scene.
        rng: draws the resamples and the minibatches.
        stop: when set, the fine-tuning stops at its next minibatch and returns None.

    Returns:
        The fine-tuned copy in eval mode (an ensemble for an ensemble), or None if stopped.

    Example:
        >>> from reward_models.config import model_config
        >>> _ = torch.manual_seed(0)
        >>> model = RewardModel(model_config("tiny-mask", histogram_bins=16))
        >>> rng = np.random.default_rng(0)
        >>> a, b = rng.uniform(-1, 1, (2, 16, 8)).astype(np.float32)
        >>> answers = [("s", a[k], b[k], 1.0) for k in range(16)]  # a always better
        >>> data = answer_tensors(answers, {"s": np.zeros((1, 16, 16), np.uint8)})
        >>> def wins(m):
        ...     return float(np.mean(m.predict(data.observations[0], a)
        ...                          > m.predict(data.observations[0], b)))
        >>> tuned = fine_tune(model, data, epochs=30, lr=1e-2, batch_size=8, rng=rng)
        >>> wins(tuned) > wins(model), tuned is not model
        (True, True)
    """
    members = model.members if isinstance(model, RewardEnsemble) else [model]
    tuned = []
    for original in members:
        part = data.bootstrap(rng) if len(members) > 1 else data
        member = _fine_tune_member(
            original, part, epochs=epochs, lr=lr, batch_size=batch_size, rng=rng, stop=stop
        )
        if member is None:
            return None
        tuned.append(member)
    return tuned[0] if len(tuned) == 1 else RewardEnsemble(tuned)


def _fine_tune_member(
    original: RewardModel,
    data: PreferenceTensors,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    rng: np.random.Generator,
    stop: threading.Event | None,
) -> RewardModel | None:
    """A fine-tuned copy of one model on ``data``; None if ``stop`` was set."""
    member = copy.deepcopy(original).train()
    device = next(member.parameters()).device
    obs = torch.as_tensor(data.observations, device=device)
    scene = torch.as_tensor(data.scene_index, device=device)
    a, b = (torch.as_tensor(x, device=device) for x in (data.action_a, data.action_b))
    mu = torch.as_tensor(data.mu, device=device)
    optimizer = torch.optim.Adam(member.parameters(), lr=lr)
    for _ in range(epochs):
        for batch in scene_batches(data.scene_index, batch_size, scenes_per_batch=1, rng=rng):
            if stop is not None and stop.is_set():
                return None
            idx = torch.as_tensor(batch, device=device)
            scenes, inverse = torch.unique(scene[idx], return_inverse=True)
            r = member(
                obs[scenes],
                torch.cat([a[idx], b[idx]]),
                scene_index=torch.cat([inverse, inverse]),
            )
            loss = bradley_terry_loss(r[: len(idx)], r[len(idx) :], mu[idx]).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return member.eval()
