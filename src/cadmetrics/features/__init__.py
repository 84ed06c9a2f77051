"""Versioned, deterministic feature vectors from CAD files, cached on two levels.

``FeatureExtractor`` is the entry point; ``Mesh`` the in-memory input; the layouts
(``cadmetrics.features.layout``) say what each version's vector holds.
"""

from cadmetrics.features.cache import FeatureCache, MemoryCache
from cadmetrics.features.extractor import FeatureExtractor, FeatureVector
from cadmetrics.features.layout import LAYOUTS, Feature, FeatureLayout, layout_for
from cadmetrics.features.mesh import Mesh
from cadmetrics.features.tuning import CacheRecommendation
from cadmetrics.features.vector import FeatureConfig

__all__ = [
    "LAYOUTS",
    "CacheRecommendation",
    "Feature",
    "FeatureCache",
    "FeatureConfig",
    "FeatureExtractor",
    "FeatureLayout",
    "FeatureVector",
    "MemoryCache",
    "Mesh",
    "layout_for",
]
