"""The text path: Gemma hidden states → feature extractor → embeddings connectors → transformer contexts."""

from .connector import Embeddings1DConnector
from .features import FeatureExtractorV1, FeatureExtractorV2
from .processor import TextConnectors, TextContexts

__all__ = ["Embeddings1DConnector", "FeatureExtractorV1", "FeatureExtractorV2", "TextConnectors", "TextContexts"]
