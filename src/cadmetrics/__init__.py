"""cadmetrics: feature extraction, safe model loading, vector storage and drift monitoring for CAD
machine-learning services, observed through one declarative metrics contract.

``import cadmetrics`` gives what a host needs and no more; everything else lives in the
subpackages (``cadmetrics.contract``, ``cadmetrics.telemetry``).
"""

from cadmetrics.contract.compose import load_contract
from cadmetrics.contract.model import Contract, MetricSpec
from cadmetrics.drift import DriftMonitor
from cadmetrics.errors import (
    CadMetricsError,
    ContractCollisionError,
    ContractError,
    ContractLoadError,
    DriftError,
    FeatureError,
    FeatureInputError,
    InputError,
    LabelError,
    StoreCorruptError,
    TelemetryError,
    VectorInputError,
    VectorStoreError,
)
from cadmetrics.features.extractor import FeatureExtractor
from cadmetrics.models.loader import ModelLoader
from cadmetrics.models.scan import scan
from cadmetrics.telemetry.facade import Telemetry
from cadmetrics.vectors import VectorStore

__version__ = "0.1.0"

__all__ = [
    "CadMetricsError",
    "Contract",
    "ContractCollisionError",
    "ContractError",
    "ContractLoadError",
    "DriftError",
    "DriftMonitor",
    "FeatureError",
    "FeatureExtractor",
    "FeatureInputError",
    "InputError",
    "LabelError",
    "MetricSpec",
    "ModelLoader",
    "StoreCorruptError",
    "Telemetry",
    "TelemetryError",
    "VectorInputError",
    "VectorStore",
    "VectorStoreError",
    "__version__",
    "load_contract",
    "scan",
]
