"""Real scikit-learn models (forests, pipelines, boosting with random state) are allowed by
the scan in both blocking modes and load through the restricted unpickler."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cadmetrics.models import Mode, scan
from cadmetrics.models.interface import Interface
from cadmetrics.models.loader import ModelLoader

sklearn = pytest.importorskip("sklearn")
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(80, 4))
Y = (X[:, 0] + X[:, 1] > 0).astype(int)


def fitted() -> dict[str, Any]:
    return {
        "random forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y),
        "gradient boosting with a RandomState": GradientBoostingRegressor(
            n_estimators=5, random_state=np.random.RandomState(1)
        ).fit(X, X[:, 2]),
    }


MODELS = fitted()


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("mode", [Mode.BLOCKLIST, Mode.ALLOWLIST])
@pytest.mark.parametrize("name", MODELS)
def test_estimators_are_allowed(name: str, mode: Mode, protocol: int) -> None:
    report = scan(pickle.dumps(MODELS[name], protocol=protocol), mode)
    assert not report.blocked, report.render()


@pytest.mark.parametrize("name", MODELS)
def test_estimators_load_and_predict_under_the_allowlist(name: str, tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(MODELS[name], protocol=5))
    loader = ModelLoader(mode="allowlist", interface=Interface(probe=X[:3], output_shape=(3,)))
    model = loader.load(path)
    assert np.array_equal(model.predict(X), MODELS[name].predict(X))
