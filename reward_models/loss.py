"""The Bradley-Terry preference loss (Melenberg et al., MIDL 2025, eq. 2).

For a pair with rewards ``r_a, r_b`` and the answer ``mu`` (1 = a chosen, 0.5 = about equal,
0 = b chosen), the model's probability that a is preferred is ``P = sigmoid(r_a - r_b)`` and
the loss is the cross-entropy with the soft target ``mu``::

    loss = -[mu * log sigmoid(r_a - r_b) + (1 - mu) * log sigmoid(r_b - r_a)]

averaged over the batch. Ties (``mu = 0.5``) train too: they pull ``r_a`` and ``r_b``
together. Accuracy counts only unambiguous pairs (``mu != 0.5``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["LossAndMetrics", "bradley_terry_loss"]


class LossAndMetrics(NamedTuple):
    """The loss (with gradients) and the accuracy on unambiguous pairs.

    Attributes:
        loss: scalar tensor, the mean cross-entropy.
        accuracy: scalar tensor (no gradients): share of pairs with ``mu != 0.5`` whose
            reward difference has the answer's sign (a zero difference counts as wrong);
            NaN when the batch has no unambiguous pair.
        n_unambiguous: number of pairs with ``mu != 0.5``.
    """

    loss: torch.Tensor
    accuracy: torch.Tensor
    n_unambiguous: int


def bradley_terry_loss(
    reward_a: torch.Tensor, reward_b: torch.Tensor, mu: torch.Tensor
) -> LossAndMetrics:
    """Cross-entropy of the Bradley-Terry model against soft preference targets.

    Args:
        reward_a: rewards of the first actions, ``(batch,)``.
        reward_b: rewards of the second actions, ``(batch,)``.
        mu: answers in [0, 1], ``(batch,)`` (1 = a chosen, 0.5 = tie, 0 = b chosen).

    Returns:
        :class:`LossAndMetrics`.

    Example:
        >>> out = bradley_terry_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0]),
        ...                          torch.tensor([1.0, 0.5]))
        >>> round(out.loss.item(), 4), out.accuracy.item(), out.n_unambiguous
        (0.5032, 1.0, 1)
    """
    if not (reward_a.shape == reward_b.shape == mu.shape) or reward_a.ndim != 1:
        raise ValueError(
            f"reward_a, reward_b and mu must be (batch,) of one size, got "
            f"{tuple(reward_a.shape)}, {tuple(reward_b.shape)}, {tuple(mu.shape)}"
        )
    diff = reward_a - reward_b
    mu = mu.to(diff.dtype)
    loss = -(mu * F.logsigmoid(diff) + (1.0 - mu) * F.logsigmoid(-diff)).mean()
    with torch.no_grad():
        clear = mu != 0.5
        n = int(clear.sum())
        correct = torch.where(mu[clear] > 0.5, diff[clear] > 0, diff[clear] < 0)
        accuracy = correct.float().mean() if n else torch.tensor(float("nan"))
    return LossAndMetrics(loss, accuracy, n)
