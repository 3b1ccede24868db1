"""The live human queue: a labeling web app over the leased label queue.

People compare renderings in a web page; their answers land in the label queue's SQL
database (:class:`tfgym.preferences.queue.LabelQueue`: SQLite by default, PostgreSQL by URL)
and from there reach reward-model training and the ``"human"`` reward backend.

Modules (each imported on its own; importing this package loads none of them):

* :mod:`tfgym.labeling.app` -- :func:`~tfgym.labeling.app.create_app`: the FastAPI app, its
  JSON API (``/api/next``, ``/api/answer``, ``/api/stats``, ``/api/rendering/<sha>.png``) and
  pages (``/`` pairs, ``/rank`` rankings of four, ``/stats``).
* :mod:`tfgym.labeling.security` -- loopback by default, the access token, no cross-site
  answers, bounded request bodies.
* :mod:`tfgym.labeling.server` -- :func:`~tfgym.labeling.server.serve` (``tfgym label``) and
  :func:`~tfgym.labeling.server.running_server` (a server in a background thread).
* :mod:`tfgym.labeling.items` -- display-quality renderings of actions as queue items.
* :mod:`tfgym.labeling.client` -- simulated labelers that answer through the HTTP API;
  :mod:`tfgym.labeling.sim_scores` (their oracle scores and rankings) and
  :mod:`tfgym.labeling.sim_report` (their report).
* :mod:`tfgym.labeling.blocking` -- the blocking mode of the human reward backend.
* :mod:`tfgym.labeling.bradley_terry` -- Bradley-Terry utilities of items from answers.
"""

from __future__ import annotations

__all__: list[str] = []
