"""The transformer's forward with the video sequence split over the ranks of a group (Ulysses).

Each rank prepares only its contiguous range of video tokens — RoPE tables and AdaLN rows for ``t_r`` tokens, not
``T`` (:meth:`~rs_ltxv.ltx.transformer.LTXAVTransformer.prepare` builds them for exactly the tokens it is given) —
runs every block with the sequence-parallel kernels for video self-attention and video→audio attention (the other
attentions and the feed-forward, chunked or not, are local), and gathers the video velocity once at the end. Audio
and text are replicated; the audio velocity is taken from the first rank so every rank returns identical tensors.
The counterpart of Raylight's ``usp_dit_forward`` for LTXAV (which pads and shards every stream instead).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..ltx.transformer import AttentionKind, LTXAVTransformer, Perturbations, RunOptions, StreamInput, attention_bias
from ..ops import resolve_backend
from .comm import Group, broadcast_, gather_tokens
from .kernels import UlyssesKV, UlyssesSelf
from .splits import head_splits, token_splits


class SPForward:
    """A replacement for ``model.forward`` (installed by :func:`~.patches.sequence_parallel`) running it over
    ``group``. Every rank must call it with the same full inputs; every rank gets the same full velocities.

    With fewer video tokens than ranks (or no video) it runs the plain forward on every rank, without collectives.
    """

    def __init__(self, model: LTXAVTransformer, group: Group) -> None:
        self.model = model
        self.group = group
        cfg = model.config
        head_splits(min(cfg.num_attention_heads, cfg.audio_num_attention_heads), group.world)  # fail early
        #: shapes of this rank's prepared video state in the last sharded call: ``x``, ``rope`` (cos),
        #: ``ada_index`` (None when all its tokens share one timestep), ``cross_rope`` (cos) — for tests and logs
        self.last_shapes: dict[str, tuple[int, ...] | None] = {}

    def sharded(self, video: StreamInput | None) -> bool:
        """Whether a call with this video stream is split over the ranks (False: every rank runs it whole)."""
        return self.group.world > 1 and video is not None and video.latent.shape[1] >= self.group.world

    def __call__(
        self,
        video: StreamInput | None,
        audio: StreamInput | None = None,
        perturbations: Perturbations | None = None,
        options: RunOptions | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Velocities: video ``(B, T_v, out_channels)``, audio ``(B, T_a, audio_out_channels)`` — equal to
        :meth:`LTXAVTransformer.forward` on one device.

        Raises:
            InputError: as :meth:`LTXAVTransformer.forward`.
            AttentionBackendError: ``options.attention_mode`` is unknown or not installed.
        """
        model, group = self.model, self.group
        options = options or RunOptions()
        if not self.sharded(video):
            return LTXAVTransformer.forward(model, video, audio, perturbations, options)
        model.check_inputs(video, audio)
        tokens = token_splits(video.latent.shape[1], group.world)
        start = sum(tokens[: group.rank])
        dtype = video.latent.dtype
        # every rank's queries attend to all T keys, so the guide bias stays whole: (B, 1, T, T)
        full_bias = attention_bias(video.attention_mask, dtype)
        local = replace(video.slice_tokens(start, start + tokens[group.rank]), attention_mask=None)
        v, a = model.prepare(local, audio)
        v = replace(v, self_bias=full_bias)
        self.last_shapes = _shapes(v)
        base = options.attention_mode
        if isinstance(base, str):
            base = resolve_backend(base, v.x.device)
        shape = tuple(tokens)
        kernels = ((AttentionKind.VIDEO_SELF, UlyssesSelf(group, shape, base)),
                   (AttentionKind.VIDEO_TO_AUDIO, UlyssesKV(group, shape, base)))
        opts = replace(options, attention_mode=base, kernels=kernels + tuple(options.kernels))
        for block in model.transformer_blocks:
            v, a = block(v, a, perturbations, opts)
        v_out, a_out = model.output(v, a)
        v_out = gather_tokens(v_out, tokens, group)
        if a_out is not None:
            a_out = broadcast_(a_out.contiguous(), group)
        return v_out, a_out


def _shapes(v) -> dict[str, tuple[int, ...] | None]:
    """Shapes of a prepared video state's per-token tensors (what sequence parallelism keeps local)."""
    return {"x": tuple(v.x.shape), "rope": tuple(v.rope.cos.shape),
            "ada_index": None if v.ada.index is None else tuple(v.ada.index.shape),
            "cross_rope": None if v.cross_rope is None else tuple(v.cross_rope.cos.shape)}
