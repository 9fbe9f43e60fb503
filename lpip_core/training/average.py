"""Weight averaging of fine-tunes ("model soup", Wortsman et al. 2022): checkpoints fine-tuned from
one model on different degradations stay in one basin, and a weighted mean of their weights can keep
much of what each does best (docs/training.md, "Averaging fine-tunes"). Only checkpoints of one architecture,
scale and schedule average."""
from __future__ import annotations

import dataclasses
import datetime
import math
import os
from typing import Sequence

from ..checks import finite
from ..method.checkpoint import CheckpointError, load_model
from ..method.model import LPIPModel


def average_models(paths: Sequence[str | os.PathLike], weights: Sequence[float] | None = None) -> LPIPModel:
    """The weighted mean of the checkpoints' weights (weights >= 0, summing to 1; default equal), as one model whose
    training summary keeps what the parents share, each parent's own summary with its weight, and
    their steps and minutes summed."""
    weights = [1 / len(paths)] * len(paths) if weights is None else weights
    if len(paths) < 2 or len(paths) != len(weights):
        raise ValueError(f"give two or more checkpoints and one weight each, got {len(paths)} and {len(weights)}")
    if any(not finite(w) or w < 0 for w in weights) or not math.isclose(sum(weights), 1.0, abs_tol=1e-6):
        raise ValueError(f"weights must be >= 0 and sum to 1, got {list(weights)}")
    models = [load_model(p) for p in paths]
    first = models[0]
    for path, model in zip(paths[1:], models[1:]):
        if dataclasses.replace(model.config, training={}) != dataclasses.replace(first.config, training={}):
            raise CheckpointError(f"{os.fspath(path)}: another architecture, scale or schedule than "
                                  f"{os.fspath(paths[0])}; only fine-tunes of one model average")
    states = [m.state_dict() for m in models]
    first.load_state_dict({key: sum(w * s[key] for w, s in zip(weights, states)) for key in states[0]})
    parents = [{"weight": w, **m.config.training} for w, m in zip(weights, models)]
    shared = {k: v for k, v in parents[0].items() if k != "weight" and all(p.get(k) == v for p in parents)}
    training = {**shared, "average": parents, "date": datetime.date.today().isoformat()}
    for key in ("steps", "minutes"):
        if all(key in p for p in parents):
            training[key] = sum(p[key] for p in parents)
    first.config = dataclasses.replace(first.config, training=training)
    return first
