"""Ulysses sequence parallelism on 2 and 3 gloo ranks (spawned processes on this CPU) equals the single-process
transformer: forwards of both layouts with odd token counts, per-token timesteps, guide tokens with an attention
strength, STG / modality-isolation perturbations, video-only, fewer tokens than ranks, chunked feed-forward; whole
``run_stage`` calls (euler, res_2s, full guidance). Every rank returns identical tensors; each rank prepared RoPE and
AdaLN state for its own tokens only; the patch comes off without a trace."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
import torch
import torch.multiprocessing as mp

from rs_ltxv.distributed.comm import Group
from rs_ltxv.distributed.forward import SPForward
from rs_ltxv.distributed.patches import sequence_parallel, sp_object_patches
from rs_ltxv.distributed.splits import head_splits, token_range, token_splits
from rs_ltxv.ltx.errors import InputError

from reference import sp_ranks

LAYOUTS = ("2.0", "2.3")
WORLDS = (2, 3)
TOLERANCE = 1e-5


def _spawn(world: int, bundle_path: str, out_dir: str, deadline_s: float = 240.0) -> list[dict]:
    """Run :func:`sp_ranks.rank_main` on ``world`` spawned processes; fail (and kill them) past ``deadline_s``."""
    store = os.path.join(out_dir, "store")
    ctx = mp.start_processes(sp_ranks.rank_main, args=(world, store, bundle_path, out_dir), nprocs=world,
                             join=False, start_method="spawn")
    end = time.monotonic() + deadline_s
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > end:
                raise AssertionError(f"{world} ranks did not finish within {deadline_s} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    return [torch.load(os.path.join(out_dir, f"rank{r}.pt"), weights_only=False) for r in range(world)]


@pytest.fixture(scope="module", params=LAYOUTS)
def bundle(request, tmp_path_factory):
    """(bundle, single-process outputs, {world: per-rank outputs}) for one layout."""
    b = sp_ranks.make_bundle(request.param)
    root = tmp_path_factory.mktemp(f"sp{request.param}")
    path = str(root / "bundle.pt")
    torch.save(b, path)
    model = sp_ranks.load_model(b)
    with torch.no_grad():
        single = {"forward": {n: model(*c) for n, c in b["forward"].items()},
                  "stage": {n: sp_ranks.run_stage_case(model, c) for n, c in b["stage"].items()}}
    ranks = {}
    for world in WORLDS:
        out_dir = root / f"w{world}"
        out_dir.mkdir()
        ranks[world] = _spawn(world, path, str(out_dir))
    return b, single, ranks


def _max_rel_err(got, want) -> float:
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        if w is None:
            assert g is None
            continue
        worst = max(worst, float(((g - w).abs() / w.abs().clamp(min=1.0)).max()))
    return worst


def _digest(tensors) -> str:
    h = hashlib.sha1()
    for t in tensors:
        h.update(b"none" if t is None else t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("world", WORLDS)
def test_forward_equals_single_process(bundle, world):
    b, single, ranks = bundle
    errors = {name: _max_rel_err(ranks[world][0]["forward"][name], single["forward"][name]) for name in b["forward"]}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE, f"{worst}: {errors[worst]:.2e}"


@pytest.mark.parametrize("world", WORLDS)
def test_every_rank_returns_identical_outputs(bundle, world):
    _, _, ranks = bundle
    digests = {r: {n: _digest(o) for n, o in {**out["forward"], **out["stage"]}.items()}
               for r, out in enumerate(ranks[world])}
    assert all(d == digests[0] for d in digests.values())


@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize("sampler", ["euler", "res_2s"])
def test_whole_stage_equals_single_process(bundle, world, sampler):
    _, single, ranks = bundle
    err = _max_rel_err(ranks[world][0]["stage"][sampler], single["stage"][sampler])
    assert err <= TOLERANCE, f"{err:.2e}"


@pytest.mark.parametrize("world", WORLDS)
def test_each_rank_prepares_only_its_tokens(bundle, world):
    """RoPE tables, hidden tokens, cross-attention RoPE and the AdaLN index have the rank's token count."""
    _, _, ranks = bundle
    total = 45 + 15  # guides_attention_T45: 45 noisy + 15 guide tokens
    for rank, out in enumerate(ranks[world]):
        shapes = out["shapes"]["guides_attention_T45/none"]
        start, stop = token_range(total, world, rank)
        local = stop - start
        assert shapes["x"][1] == local
        assert local in shapes["rope"]
        assert local in shapes["cross_rope"]
        assert shapes["ada_index"] in ((2, local), None)


def _expected_all_to_all_bytes(cfg, world: int, rank: int, tokens: int, batch: int = 2, itemsize: int = 4) -> int:
    """Bytes a rank sends by all-to-all in one forward: per block, q/k/v out and the attention output back (video
    self-attention), k/v out (video→audio); the piece a rank keeps is not sent."""
    t = token_splits(tokens, world)
    hv, dv = cfg.num_attention_heads, cfg.attention_head_dim
    ha, da = cfg.audio_num_attention_heads, cfg.audio_attention_head_dim
    h_v, h_a, t_r = head_splits(hv, world)[rank], head_splits(ha, world)[rank], t[rank]
    attn1 = 3 * batch * dv * t_r * (hv - h_v) + batch * h_v * dv * (tokens - t_r)
    per_block = attn1 + 2 * batch * da * t_r * (ha - h_a)
    return per_block * cfg.num_layers * itemsize


@pytest.mark.parametrize("world", WORLDS)
def test_bytes_sent_match_the_formula(bundle, world):
    b, _, ranks = bundle
    sent = [out["traffic"][0]["all_to_all"] for out in ranks[world]]
    assert sent == [_expected_all_to_all_bytes(b["cfg"], world, r, 63) for r in range(world)]


@pytest.mark.parametrize("world", WORLDS)
def test_collectives_per_forward(bundle, world):
    """Per block one all-to-all each way for video self-attention and one for video→audio keys/values; the v2a
    head outputs per block and the velocity once per forward are gathered."""
    b, _, ranks = bundle
    layers = b["cfg"].num_layers
    assert ranks[world][0]["traffic"][1] == {"all_to_all": 3 * layers, "all_gather": layers + 1}


def test_ranks_run_whole_sequence_when_fewer_tokens_than_ranks(bundle):
    _, _, ranks = bundle
    assert ranks[3][0]["shapes"]["fewer_tokens_than_ranks_T2/none"] is None


@pytest.mark.parametrize("world", WORLDS)
def test_patch_comes_off_inside_the_ranks(bundle, world):
    _, single, ranks = bundle
    for out in ranks[world]:
        assert _digest(out["forward_after"]) == _digest(single["forward"]["odd_T63/none"])


# ----------------------------------------------------------------------------------------- no process group needed


def test_token_splits_are_contiguous_and_balanced():
    assert [token_splits(63, 2), token_splits(64, 3), token_splits(2, 3)] == [[32, 31], [22, 21, 21], [1, 1, 0]]


def test_token_ranges_tile_the_sequence():
    ranges = [token_range(64, 3, r) for r in range(3)]
    assert ranges == [(0, 22), (22, 43), (43, 64)]


def test_uneven_heads_split():
    assert head_splits(32, 3) == [11, 11, 10]


def test_more_ranks_than_heads_is_a_clear_error():
    with pytest.raises(InputError, match="at most 4 GPUs"):
        SPForward(sp_ranks.build_model(sp_ranks.sp_config("2.3")), Group(None, 0, 5))


def test_sequence_parallel_restores_the_model_bit_for_bit():
    """A one-rank group (no collectives are needed) — the context manager sets and removes ``forward`` only."""
    model = sp_ranks.build_model(sp_ranks.sp_config("2.3"))
    video, audio, ptb, opts = sp_ranks.forward_cases(model)["odd_T63/none"]
    with torch.no_grad():
        before = model(video, audio, ptb, opts)
        with sequence_parallel(model, Group(None, 0, 1)) as sp:
            inside = model(video, audio, ptb, opts)
            assert model.forward is sp
        after = model(video, audio, ptb, opts)
    assert "forward" not in model.__dict__
    assert _digest(after) == _digest(before) == _digest(inside)


def test_object_patch_targets_the_forward_of_the_diffusion_model():
    model = sp_ranks.build_model(sp_ranks.sp_config("2.0"))
    patches = sp_object_patches(model, Group(None, 0, 2))
    assert list(patches) == ["diffusion_model.forward"]
    assert isinstance(patches["diffusion_model.forward"], SPForward)
