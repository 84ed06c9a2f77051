"""Small picklable models for the loader tests (importable, as a real model's classes are)."""

from __future__ import annotations

import numpy as np

from cadmetrics.models import Policy


class ToyModel:
    def __init__(self, weights: list[float]) -> None:
        self.weights = np.asarray(weights)

    def predict(self, rows: object) -> np.ndarray:
        result: np.ndarray = np.asarray(rows, dtype=float) @ self.weights
        return result


class NanModel(ToyModel):
    def predict(self, rows: object) -> np.ndarray:
        return super().predict(rows) * np.nan


class BrokenModel(ToyModel):
    def predict(self, rows: object) -> np.ndarray:
        raise RuntimeError("no")


class NotCallable:
    predict = 3


#: The toys, admitted by exact name (as a host names its own model classes).
TOY_POLICY = Policy().extend(
    allow=[f"tests.models.toy.{cls.__name__}" for cls in (ToyModel, NanModel, BrokenModel, NotCallable)]
)
