"""The part of the text path stored in the LTX checkpoint: feature extractor + video and audio connectors.

Input: the Gemma hidden states (``L`` tensors ``(B, T, D)`` or one ``(B, T, D, L)``; real models: ``L = 49``,
``D = 3840``) and the 0/1 attention mask ``(B, T)`` (left padding); output: the video and audio contexts the
transformer takes, ``(B, T, D_video_ctx)`` and ``(B, T, D_audio_ctx)``, with padding replaced by registers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...ops import resolve_backend
from ..config import TransformerConfig
from .connector import Embeddings1DConnector
from .features import FeatureExtractorV1, FeatureExtractorV2


@dataclass(frozen=True)
class TextContexts:
    """Contexts for the transformer: ``video`` ``(B, S, D_v)``, ``audio`` ``(B, S, D_a)``, ``mask`` ``(B, S)``
    (all ones: the connectors replaced the padding).

    Mirrors ``ltx_core.text_encoders.gemma.embeddings_processor.EmbeddingsProcessorOutput``.
    """

    video: torch.Tensor
    audio: torch.Tensor
    mask: torch.Tensor


class TextConnectors(nn.Module):
    """Feature extractor (V1 for LTX-2, V2 for LTX-2.3) and the two ``Embeddings1DConnector``s.

    Submodule names: ``feature_extractor`` (checkpoint ``text_embedding_projection.``), ``video_connector`` and
    ``audio_connector`` (checkpoint ``model.diffusion_model.{video,audio}_embeddings_connector.``).

    Mirrors ``ltx_core.text_encoders.gemma.embeddings_processor.EmbeddingsProcessor`` (diffusers:
    ``diffusers.pipelines.ltx2.connectors.LTX2TextConnectors``).
    """

    def __init__(self, cfg: TransformerConfig, num_gemma_states: int = 49) -> None:
        super().__init__()
        gemma_dim = cfg.caption_channels
        if cfg.caption_proj_before_connector:
            self.feature_extractor: nn.Module = FeatureExtractorV2(gemma_dim, num_gemma_states, cfg.inner_dim,
                                                                   cfg.audio_inner_dim)
        else:
            self.feature_extractor = FeatureExtractorV1(gemma_dim, num_gemma_states)
        self.video_connector = Embeddings1DConnector(cfg.video_connector)
        self.audio_connector = Embeddings1DConnector(cfg.audio_connector)
        self.num_gemma_states = num_gemma_states

    def forward(self, hidden_states, mask: torch.Tensor, backend: str = "sdpa") -> TextContexts:
        """Gemma hidden states (``L`` tensors ``(B, T, D)`` or one ``(B, T, D, L)``) + 0/1 mask ``(B, T)`` (left
        padding) → :class:`TextContexts` ``(B, T, D_v)`` / ``(B, T, D_a)``.

        Mirrors ``EmbeddingsProcessor.process_hidden_states``.

        Raises:
            InputError: ``T`` is not a multiple of the connectors' registers.
            AttentionBackendError: ``backend`` is an unknown or uninstalled attention backend name.
        """
        backend = resolve_backend(backend, mask.device) if isinstance(backend, str) else backend
        video_features, audio_features = self.feature_extractor(hidden_states, mask)
        video = self.video_connector(video_features, mask, backend)
        audio = self.audio_connector(audio_features, mask, backend)
        return TextContexts(video=video, audio=audio, mask=torch.ones(video.shape[:2], dtype=torch.int64,
                                                                      device=video.device))
