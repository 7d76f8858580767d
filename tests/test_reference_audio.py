"""ID-LoRA reference audio: the conditioning's tokens / positions / mask against ltx-core 1.2.0's formula, appended
(ltx-core) vs prepended (ComfyUI) reference tokens on a real tiny transformer, identity guidance against hand-computed
model calls, and tiny end-to-end runs through the library, the CLI and the node. Real tiny models, float32, CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rs_ltxv.ltx.errors import InputError
from rs_ltxv.ltx.pipeline.conditioning import ReferenceAudio, StageState, reference_audio_positions
from rs_ltxv.ltx.pipeline.denoiser import Denoiser
from rs_ltxv.ltx.pipeline.generate import generate
from rs_ltxv.ltx.pipeline.guidance import GuidanceParams, guide
from rs_ltxv.ltx.pipeline.latents import VideoSize
from rs_ltxv.ltx.pipeline.parts import load_model_parts
from rs_ltxv.ltx.pipeline.request import Request
from rs_ltxv.ltx.pipeline.track import Track
from rs_ltxv.ltx.text import TextContexts
from rs_ltxv.ltx.tiny import write_tiny_checkpoint
from rs_ltxv.ltx.tokens import audio_positions, video_positions
from rs_ltxv.ltx.transformer import StreamInput

NO_GUIDANCE = GuidanceParams()


def expected_positions(frames: int) -> torch.Tensor:
    """ltx-core 1.2.0 ``patchify_dubit_audio_reference_latent(negative_positions=True)`` written out: audio latent
    frame i spans mel frames ``[max(4i − 3, 0), max(4i + 1, 0))`` × 0.01 s; then ``positions − duration − 0.04``."""
    start = [max(4 * i - 3, 0) * 0.01 for i in range(frames)]
    end = [max(4 * (i + 1) - 3, 0) * 0.01 for i in range(frames)]
    duration = end[-1]
    return torch.tensor([[s - duration - 0.04, e - duration - 0.04] for s, e in zip(start, end, strict=True)])


def _audio_state(batch: int = 1, frames: int = 10, width: int = 128, seed: int = 0) -> StageState:
    g = torch.Generator().manual_seed(seed)
    size = VideoSize(9, 64, 64, 25.0, batch)
    video = Track.from_latent(torch.randn(batch, 4, 16, generator=g),
                              video_positions(batch, 2, 2, 1, 25.0))
    audio = Track.from_latent(torch.randn(batch, frames, width, generator=g), audio_positions(batch, frames))
    return StageState(video, audio, size)


@pytest.mark.parametrize("frames,strength", [(1, 1.0), (7, 1.0), (125, 0.6)])
def test_tokens_positions_and_mask_follow_the_reference_formula(frames, strength):
    state = _audio_state(batch=2)
    ref = torch.randn(1, 8, frames, 16, generator=torch.Generator().manual_seed(1))
    out = ReferenceAudio(ref, strength).apply(state).audio
    n = state.audio.latent.shape[1]
    tokens = ref.permute(0, 2, 1, 3).reshape(1, frames, 128).expand(2, -1, -1)  # ComfyUI's / AudioPatchifier's
    assert out.latent.shape == (2, n + frames, 128)
    assert out.generated == n
    assert out.reference == (n, n + frames)
    assert torch.equal(out.latent[:, :n], state.audio.latent)
    assert torch.equal(out.latent[:, n:], tokens)
    assert torch.equal(out.clean[:, n:], tokens)
    assert torch.equal(out.mask[:, :n], state.audio.mask)
    assert torch.equal(out.mask[:, n:], torch.full((2, frames, 1), 1.0 - strength))
    torch.testing.assert_close(out.positions[:, 0, n:], expected_positions(frames).expand(2, -1, -1),
                               rtol=0, atol=1e-6)
    assert torch.equal(out.positions[:, :, :n], state.audio.positions)
    assert out.positions[0, 0, -1, 1] == pytest.approx(-0.04, abs=1e-6)  # ends one latent frame before t = 0
    assert torch.equal(reference_audio_positions(2, frames), out.positions[:, :, n:])
    # dropped after sampling; removed for the identity pass
    assert torch.equal(out.without_guides().latent, state.audio.latent)
    back = out.without_reference()
    assert back.reference == (0, 0)
    assert torch.equal(back.latent, state.audio.latent)
    assert torch.equal(back.positions, state.audio.positions)
    assert torch.equal(back.mask, state.audio.mask)


def test_bad_reference_audio_is_refused():
    state = _audio_state()
    with pytest.raises(InputError, match="stage with sound"):
        ReferenceAudio(torch.zeros(1, 8, 3, 16)).apply(state.with_audio(None))
    with pytest.raises(InputError, match="C·M = 128"):
        ReferenceAudio(torch.zeros(1, 8, 3, 8)).apply(state)
    with pytest.raises(InputError, match="batch 3"):
        ReferenceAudio(torch.zeros(3, 8, 3, 16)).apply(state)
    with pytest.raises(InputError, match="T ≥ 1"):
        ReferenceAudio(torch.zeros(1, 8, 0, 16)).apply(state)


def test_reference_audio_travels_over_the_wire():
    from rs_ltxv.distributed.wire import decode, encode

    item = ReferenceAudio(torch.randn(1, 8, 5, 16), 0.75)
    back = decode(encode(item))
    assert isinstance(back, ReferenceAudio)
    assert back.strength == 0.75
    assert torch.equal(back.latent, item.latent)


# ------------------------------------------------------------------------------------------------ tiny model

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("idlora")
    ckpt = write_tiny_checkpoint(d / "t.safetensors", "2.3", dtype=torch.float32, full=True)
    parts = load_model_parts(ckpt, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    vd, ad = parts.transformer.context_dim
    pos = TextContexts(torch.randn(1, 8, vd, generator=g), torch.randn(1, 8, ad, generator=g), torch.ones(1, 8))
    neg = TextContexts(torch.randn(1, 8, vd, generator=g), torch.randn(1, 8, ad, generator=g), torch.ones(1, 8))
    return parts, pos, neg, ckpt


def _tracks(parts, ref_frames: int = 6, seed: int = 3):
    """A noisy tiny video track and an audio track with ``ref_frames`` reference frames appended."""
    cfg = parts.transformer.config
    g = torch.Generator().manual_seed(seed)
    size = VideoSize(17, 64, 64, 25.0, 1)
    video = Track.from_latent(torch.randn(1, 3 * 2 * 2, cfg.in_channels, generator=g),
                              video_positions(1, 3, 2, 2, 25.0))
    width = cfg.audio_in_channels
    audio = Track.from_latent(torch.randn(1, 17, width, generator=g), audio_positions(1, 17))
    ref = torch.randn(1, 1, ref_frames, width, generator=g)  # (B, C, T, M) with C·M = the track's width
    state = ReferenceAudio(ref).apply(StageState(video, audio, size))
    return state.video, state.audio


def test_appended_and_prepended_reference_give_the_same_output(tiny):
    """ltx-core appends the reference tokens after the target, ComfyUI prepends them (timestep 0, same negative
    positions): audio self-attention has no mask, so the target tokens' velocity is the same."""
    parts, pos, _, _ = tiny
    model = parts.transformer
    video, audio = _tracks(parts)
    sigma = torch.tensor([0.7])
    start, stop = audio.reference
    order = torch.cat([torch.arange(start, stop), torch.arange(0, start)])  # reference first

    def run(a_latent, a_ts, a_pos):
        v_in = StreamInput(video.latent, sigma, video.timesteps(sigma[0]), video.positions, pos.video)
        a_in = StreamInput(a_latent, sigma, a_ts, a_pos, pos.audio)
        with torch.no_grad():
            return model(v_in, a_in, None, None)

    ts = audio.timesteps(sigma[0])
    assert torch.equal(ts[:, start:], torch.zeros(1, stop - start))  # reference tokens at timestep 0
    v1, a1 = run(audio.latent, ts, audio.positions)
    v2, a2 = run(audio.latent[:, order], ts[:, order], audio.positions[:, :, order])
    tol = 1e-5 * max(1.0, float(a1.abs().max()), float(v1.abs().max()))
    assert (a2[:, stop - start:] - a1[:, :start]).abs().max() <= tol
    assert (v2 - v1).abs().max() <= tol
    assert (a1[:, :start] - run(*(t for t in (audio.latent[:, :start], ts[:, :start],
                                               audio.positions[:, :, :start])))[1]).abs().max() > 1e-4  # it matters


class Counting:
    """The transformer with a count of its forwards."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, *args):
        self.calls += 1
        return self.model(*args)


@pytest.mark.parametrize("sigma,window,extra", [(0.7, (0.0, 1.0), True), (0.7, (0.5, 1.0), False),
                                                (0.2, (0.0, 0.5), False), (0.5, (0.2, 0.5), True)])
def test_identity_guidance_scale_zero_and_range_add_no_pass(tiny, sigma, window, extra):
    parts, pos, _, _ = tiny
    video, audio = _tracks(parts)
    s = torch.tensor(sigma)
    counting = Counting(parts.transformer)
    plain = Denoiser(counting, pos)(video, audio, s, 0)
    assert counting.calls == 1
    off = Denoiser(counting, pos, identity_guidance=0.0)(video, audio, s, 0)
    assert counting.calls == 2
    assert all(torch.equal(a, b) for a, b in zip(plain, off, strict=True))
    Denoiser(counting, pos, identity_guidance=2.0, identity_start=window[0], identity_end=window[1])(video, audio,
                                                                                                    s, 0)
    assert counting.calls == 4 if extra else counting.calls == 3
    no_ref = audio.without_reference()
    Denoiser(counting, pos, identity_guidance=2.0)(video, no_ref, s, 0)  # nothing to leave out: no extra pass
    assert counting.calls == (5 if extra else 4)


def test_identity_guidance_equals_hand_computed_passes(tiny):
    """x0 = guided + s·(cond − noref): guided = CFG + STG + rescale + modality from the usual passes (all with the
    reference), cond / noref the conditional pass with and without the reference tokens; then blended."""
    parts, pos, neg, _ = tiny
    video, audio = _tracks(parts)
    sigma, scale = torch.tensor(0.8), 2.5
    vg = GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(1,), rescale=0.7, modality=2.0)
    ag = GuidanceParams(cfg=5.0, stg=1.0, stg_blocks=(1,), rescale=0.7, modality=2.0)
    counting = Counting(parts.transformer)
    den = Denoiser(counting, pos, neg, vg, ag, identity_guidance=scale)
    x0_v, x0_a = den(video, audio, sigma, 0)
    assert counting.calls == 5  # cond, negative, STG, isolation, identity

    plain = Denoiser(parts.transformer, pos, neg, vg, ag)
    from rs_ltxv.ltx.transformer import Perturbations, skip

    cond = plain._x0(video, audio, sigma, pos, None)
    uncond = plain._x0(video, audio, sigma, neg, None)
    stg = plain._x0(video, audio, sigma, pos, Perturbations.same_for_batch(1, [
        skip("skip_video_self_attn", (1,)), skip("skip_audio_self_attn", (1,))]))
    iso = plain._x0(video, audio, sigma, pos, Perturbations.same_for_batch(1, [
        skip("skip_a2v_cross_attn"), skip("skip_v2a_cross_attn")]))
    noref = plain._x0(video, audio.without_reference(), sigma, pos, None)
    start = audio.reference[0]
    want_v = guide(vg, cond[0], uncond[0], stg[0], iso[0]) + scale * (cond[0] - noref[0])
    delta_a = torch.zeros_like(cond[1])
    delta_a[:, :start] = scale * (cond[1][:, :start] - noref[1])
    want_a = guide(ag, cond[1], uncond[1], stg[1], iso[1]) + delta_a
    torch.testing.assert_close(x0_v, video.blend_x0(want_v), rtol=0, atol=1e-6)
    torch.testing.assert_close(x0_a, audio.blend_x0(want_a), rtol=0, atol=1e-6)
    assert torch.equal(x0_a[:, start:], audio.clean[:, start:])  # the reference is kept exactly
    assert (x0_v - plain(video, audio, sigma, 0)[0]).abs().max() > 1e-4  # identity guidance changes the video too


# ------------------------------------------------------------------------------------------------ end to end

def _voice(seconds: float = 1.0, rate: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return torch.stack([torch.sin(2 * math.pi * 220 * t), 0.5 * torch.sin(2 * math.pi * 330 * t)]).float()


def _req(**kw) -> Request:
    base = dict(width=64, height=64, frames=17, fps=25.0, steps=2, schedule="ltxv", decode=False, seed=4,
                video_guidance=NO_GUIDANCE, audio_guidance=NO_GUIDANCE)
    base.update(kw)
    return Request(**base)


def test_generate_with_reference_audio(tiny):
    parts, pos, _, _ = tiny
    counting = Counting(parts.transformer)
    counting.config = parts.transformer.config
    counting.parameters = parts.transformer.parameters
    from dataclasses import replace

    parts2 = replace(parts, transformer=counting)
    base = generate(parts2, _req(), contexts=(pos, None))
    assert counting.calls == 2
    voiced = generate(parts2, _req(reference_audio=_voice(), reference_audio_sample_rate=16000),
                      contexts=(pos, None))
    assert counting.calls == 2 + 4  # identity guidance (default 3): one extra pass per step
    off = generate(parts2, _req(reference_audio=_voice(), reference_audio_sample_rate=16000, identity_guidance=0.0),
                   contexts=(pos, None))
    assert counting.calls == 6 + 2
    assert voiced.audio_latent.shape == base.audio_latent.shape  # the reference tokens are dropped
    assert voiced.video_latent.shape == base.video_latent.shape
    for out in (voiced, off):
        assert torch.isfinite(out.audio_latent).all()
        assert torch.isfinite(out.video_latent).all()
        assert not torch.equal(out.audio_latent, base.audio_latent)
    assert not torch.equal(voiced.audio_latent, off.audio_latent)


def test_requests_with_bad_reference_audio_are_refused(tiny):
    parts, pos, _, _ = tiny
    with pytest.raises(InputError, match="reference_audio must be a \\(channels, samples\\)"):
        _req(reference_audio=torch.zeros(16000), reference_audio_sample_rate=16000)
    with pytest.raises(InputError, match="reference audio sample rate"):
        _req(reference_audio=_voice())
    # shorter than the mel front end takes (more than 512 samples at 16 kHz): refused when the request is built
    with pytest.raises(InputError, match="reference_audio is too short: 50 samples at 16000 Hz"):
        _req(reference_audio=torch.zeros(1, 50), reference_audio_sample_rate=16000)
    with pytest.raises(InputError, match="reference_audio is too short: 1400 samples at 44100 Hz"):
        _req(reference_audio=torch.zeros(2, 1400), reference_audio_sample_rate=44100)
    _req(reference_audio=torch.zeros(1, 513), reference_audio_sample_rate=16000)
    with pytest.raises(InputError, match="audio is too short"):
        _req(audio=torch.zeros(1, 100), audio_sample_rate=16000)
    with pytest.raises(InputError, match="generate_audio on"):
        _req(reference_audio=_voice(), reference_audio_sample_rate=16000, generate_audio=False)
    with pytest.raises(InputError, match="identity_guidance must"):
        _req(identity_guidance=-1.0)
    with pytest.raises(InputError, match="identity_guidance_end"):
        _req(identity_guidance_start=0.6, identity_guidance_end=0.5)
    from dataclasses import replace

    with pytest.raises(InputError, match="audio_vae"):
        generate(replace(parts, audio_vae=None), _req(reference_audio=_voice(), reference_audio_sample_rate=16000),
                 contexts=(pos, None))


def _write_wav(path, wave: np.ndarray, rate: int) -> None:
    import av

    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray((wave * 32767).astype(np.int16)[None], format="s16", layout="mono")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode())


def test_cli_generate_with_reference_audio(tiny, tmp_path):
    from safetensors.torch import load_file

    from rs_ltxv.__main__ import main
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma

    _, _, _, ckpt = tiny
    wav = tmp_path / "voice.wav"
    _write_wav(wav, _voice(0.8, 22050)[0].numpy(), 22050)
    common = ["generate", "--checkpoint", ckpt, "--text-encoder", str(write_tiny_gemma(tmp_path / "gemma")),
              "--steps", "2", "--dtype", "fp32", "--device", "cpu", "--stg-block", "1", "--prompt", "a fox",
              "--width", "64", "--height", "64", "--frames", "17", "--fps", "25", "--seed", "1"]
    plain, voiced = tmp_path / "plain.mp4", tmp_path / "voiced.mp4"
    assert main([*common, "-o", str(plain)]) == 0
    assert main([*common, "--reference-audio", str(wav), "--identity-guidance", "2", "-o", str(voiced)]) == 0
    a = load_file(plain.with_suffix(".latents.safetensors"))
    b = load_file(voiced.with_suffix(".latents.safetensors"))
    assert a["audio"].shape == b["audio"].shape
    assert not torch.equal(a["audio"], b["audio"])
    assert voiced.stat().st_size > 0


def test_node_inputs_become_request_fields():
    from rs_ltxv.nodes import convert, specs

    names = {i.name: i for i in specs.GENERATE.inputs}
    assert names["reference_audio"].type == "AUDIO"
    assert names["reference_audio"].optional
    assert names["identity_guidance"].default == 3.0
    wave = torch.randn(1, 2, 8000)
    req = convert.build_request(specs.GENERATE, {"reference_audio": {"waveform": wave, "sample_rate": 8000},
                                                 "identity_guidance": 1.5, "identity_guidance_end": 0.5})
    assert torch.equal(req.reference_audio, wave[0])
    assert req.reference_audio_sample_rate == 8000
    assert (req.identity_guidance, req.identity_guidance_start, req.identity_guidance_end) == (1.5, 0.0, 0.5)
    assert convert.build_request(specs.GENERATE, {}).reference_audio is None


def test_extend_with_reference_audio(tiny):
    from rs_ltxv.ltx.pipeline.extend_clip import extend

    parts, pos, _, _ = tiny
    clip = generate(parts, _req(frames=25), contexts=(pos, None))
    kw = dict(new_frames=16, overlap_frames=8, contexts=(pos, None))
    plain = extend(parts, _req(), clip.video_latent, clip.audio_latent, **kw)
    voiced = extend(parts, _req(reference_audio=_voice(), reference_audio_sample_rate=16000), clip.video_latent,
                    clip.audio_latent, **kw)
    assert voiced.audio_latent.shape == plain.audio_latent.shape
    assert torch.equal(voiced.video_latent[:, :, :2], clip.video_latent[:, :, :2])  # before the overlap: kept
    assert not torch.equal(voiced.audio_latent, plain.audio_latent)
    with pytest.raises(InputError, match="clip with an audio latent"):
        extend(parts, _req(reference_audio=_voice(), reference_audio_sample_rate=16000), clip.video_latent, None,
               **kw)


def test_identity_guidance_travels_in_a_stage_job(tiny):
    from rs_ltxv.distributed.wire import decode_stage, encode_stage
    from rs_ltxv.ltx.pipeline.stage import StageInputs

    parts, pos, _, _ = tiny
    den = Denoiser(parts.transformer, pos, identity_guidance=2.5, identity_start=0.1, identity_end=0.9)
    inputs = StageInputs(VideoSize(9, 64, 64, 25.0), torch.tensor([1.0, 0.0]),
                         conditioning=(ReferenceAudio(torch.randn(1, 1, 4, 16)),))
    back, back_inputs = decode_stage(encode_stage(den, inputs), parts.transformer, "cpu")
    assert (back.identity_guidance, back.identity_start, back.identity_end) == (2.5, 0.1, 0.9)
    assert torch.equal(back_inputs.conditioning[0].latent, inputs.conditioning[0].latent)


@pytest.fixture(scope="module")
def node_inputs(tmp_path_factory):
    from rs_ltxv.ltx.loading import load_prompt_encoder, load_transformer, open_checkpoint
    from rs_ltxv.ltx.loading.audio import load_audio_vae
    from rs_ltxv.ltx.loading.video_vae import load_video_vae
    from rs_ltxv.ltx.pipeline.parts import VideoVAEAdapter
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma
    from rs_ltxv.nodes.comfy_model import LTXVModule
    from rs_ltxv.nodes.loaders import text_encode

    work = tmp_path_factory.mktemp("node")
    path = write_tiny_checkpoint(work / "tiny-ltx-2.3.safetensors", "2.3", dtype=torch.float32, full=True)
    ckpt = open_checkpoint(path)
    encoder = load_prompt_encoder(write_tiny_gemma(work / "tiny-gemma"), ckpt, dtype=torch.float32)
    return dict(model=LTXVModule(load_transformer(ckpt, dtype=torch.float32), source=path),
                vae=VideoVAEAdapter(load_video_vae(path, dtype=torch.float32), None),
                audio_vae=load_audio_vae(path, dtype=torch.float32),
                positive=text_encode(encoder, "A woman says hello.")[0], negative=text_encode(encoder, "noise")[0])


def test_node_generates_with_reference_audio(node_inputs):
    from rs_ltxv.nodes.ltxv_generate import run_generate

    small = dict(steps=2, seed=3, frame_rate=25.0, stg_blocks="1", width=64, height=64, num_frames=17)
    voice = {"waveform": _voice(0.6, 24000)[None], "sample_rate": 24000}
    _, plain, _, _ = run_generate(None, **node_inputs, **small)
    _, voiced, _, audio = run_generate(None, **node_inputs, **small, reference_audio=voice, identity_guidance=2.0,
                                       decode=True)
    assert voiced["samples"].shape == plain["samples"].shape
    assert not torch.equal(voiced["samples"], plain["samples"])
    assert audio["waveform"].shape[-1] > 0
    inputs = dict(node_inputs, audio_vae=None)
    with pytest.raises(InputError, match="reference_audio is connected but audio_vae is not"):
        run_generate(None, **inputs, **small, reference_audio=voice)


def test_retake_with_reference_audio_keeps_the_outside_and_uses_the_voice(tiny):
    from rs_ltxv.ltx.pipeline.conditioning.time_range import audio_frame_region
    from rs_ltxv.ltx.pipeline.retake import retake

    parts, pos, _, _ = tiny
    clip = generate(parts, _req(frames=25), contexts=(pos, None))
    kw = dict(start_time=0.4, end_time=0.8, regenerate_video=False, contexts=(pos, None))
    plain = retake(parts, _req(frames=25), clip.video_latent, clip.audio_latent, **kw)
    voiced = retake(parts, _req(frames=25, reference_audio=_voice(), reference_audio_sample_rate=16000),
                    clip.video_latent, clip.audio_latent, **kw)
    inside = audio_frame_region(clip.audio_latent.shape[2], 0.4, 0.8)
    assert voiced.audio_latent.shape == clip.audio_latent.shape  # the reference tokens are dropped
    assert torch.equal(voiced.audio_latent[:, :, ~inside], clip.audio_latent[:, :, ~inside])
    assert torch.equal(voiced.video_latent, clip.video_latent)
    assert not torch.equal(voiced.audio_latent[:, :, inside], plain.audio_latent[:, :, inside])


def test_extend_and_retake_nodes_take_reference_audio(node_inputs):
    from rs_ltxv.nodes.ltxv_extend import run_extend
    from rs_ltxv.nodes.ltxv_generate import run_generate
    from rs_ltxv.nodes.ltxv_retake import run_retake

    small = dict(steps=2, seed=3, frame_rate=25.0, stg_blocks="1")
    voice = {"waveform": _voice(0.6, 24000)[None], "sample_rate": 24000}
    latent, audio_latent, _, _ = run_generate(None, **node_inputs, **small, width=64, height=64, num_frames=17)
    clip = dict(node_inputs, latent=latent, audio_latent=audio_latent)
    runs = {
        "extend": lambda **kw: run_extend(None, **clip, **small, num_new_frames=8, overlap_frames=8, **kw),
        "retake": lambda **kw: run_retake(None, **clip, **small, start_time=0.2, end_time=0.5,
                                          regenerate_video=False, **kw),
    }
    for name, run in runs.items():
        _, plain, _, _ = run()
        _, voiced, _, _ = run(reference_audio=voice, identity_guidance=2.0)
        assert voiced["samples"].shape == plain["samples"].shape, name
        assert not torch.equal(voiced["samples"], plain["samples"]), name
