"""The text path: prompt → Gemma-3 tokenizer and text model → feature extractor → embeddings connectors →
transformer contexts (:class:`PromptEncoder` does it in one call)."""

from .connector import Embeddings1DConnector
from .encoder import PromptEncoder
from .features import FeatureExtractorV1, FeatureExtractorV2
from .gemma import GemmaTextModel
from .gemma_config import GEMMA3_12B, GemmaConfig
from .processor import TextConnectors, TextContexts
from .tokenizer import GemmaTokenizer, TokenBatch

__all__ = ["GEMMA3_12B", "Embeddings1DConnector", "FeatureExtractorV1", "FeatureExtractorV2", "GemmaConfig",
           "GemmaTextModel", "GemmaTokenizer", "PromptEncoder", "TextConnectors", "TextContexts", "TokenBatch"]
