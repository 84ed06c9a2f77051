"""cadmetrics: feature extraction, safe model loading, vector storage and drift monitoring for CAD
machine-learning services, observed through one declarative metrics contract.

``import cadmetrics`` gives what a host needs and no more, every error a host catches included;
everything else lives in the subpackages (``cadmetrics.contract``, ``cadmetrics.telemetry``).
"""

import logging

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
    HashNotAllowed,
    HealthCheckFailed,
    InputError,
    InterfaceInvalid,
    LabelError,
    MissingDependency,
    ModelBlocked,
    ModelError,
    ModelLoadFailed,
    ModelRefused,
    ModelTooLarge,
    NoSnapshot,
    StoreCorruptError,
    TelemetryError,
    UnknownScanMode,
    UnsupportedModelFormat,
    VectorInputError,
    VectorStoreError,
)
from cadmetrics.features.extractor import FeatureExtractor
from cadmetrics.health import health
from cadmetrics.models.loader import ModelLoader
from cadmetrics.models.scan import scan
from cadmetrics.telemetry.facade import Telemetry
from cadmetrics.telemetry.logs import ROOT as LOG_ROOT
from cadmetrics.vectors import VectorStore

__version__ = "0.1.0"

# Silent unless the host configures logging: a library's loggers never print by themselves.
logging.getLogger(LOG_ROOT).addHandler(logging.NullHandler())

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
    "HashNotAllowed",
    "HealthCheckFailed",
    "InputError",
    "InterfaceInvalid",
    "LabelError",
    "MetricSpec",
    "MissingDependency",
    "ModelBlocked",
    "ModelError",
    "ModelLoadFailed",
    "ModelLoader",
    "ModelRefused",
    "ModelTooLarge",
    "NoSnapshot",
    "StoreCorruptError",
    "Telemetry",
    "TelemetryError",
    "UnknownScanMode",
    "UnsupportedModelFormat",
    "VectorInputError",
    "VectorStore",
    "VectorStoreError",
    "__version__",
    "health",
    "load_contract",
    "scan",
]
