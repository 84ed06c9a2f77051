"""What a loaded model must offer before it may serve: methods, and optionally a probe."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from cadmetrics.errors import InterfaceInvalid


@attrs.frozen
class Interface:
    """``methods`` must exist and be callable. With ``probe``, ``model.<probe_method>(probe)``
    must run and return finite numbers, of ``output_shape`` when given (``None`` entries
    match any size)."""

    methods: tuple[str, ...] = ("predict",)
    probe: Any = None
    probe_method: str = "predict"
    output_shape: tuple[int | None, ...] | None = None

    def validate(self, model: object) -> None:
        for method in self.methods:
            if not hasattr(model, method):
                raise InterfaceInvalid(f"the model has no {method}()", "missing_method")
            if not callable(getattr(model, method)):
                raise InterfaceInvalid(f"the model's {method} is not callable", "not_callable")
        if self.probe is None:
            return
        try:
            output = np.asarray(getattr(model, self.probe_method)(self.probe), dtype=float)
        except Exception as exc:
            raise InterfaceInvalid(
                f"{self.probe_method}(probe) failed: {type(exc).__name__}: {exc}", "probe_error"
            ) from exc
        if self.output_shape is not None and (
            output.ndim != len(self.output_shape)
            or any(
                want is not None and want != got
                for want, got in zip(self.output_shape, output.shape, strict=True)
            )
        ):
            raise InterfaceInvalid(
                f"{self.probe_method}(probe) returned shape {output.shape}, expected {self.output_shape}",
                "wrong_shape",
            )
        if not np.all(np.isfinite(output)):
            raise InterfaceInvalid(f"{self.probe_method}(probe) returned non-finite values", "non_finite")
