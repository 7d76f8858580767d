"""Our Gemma tokenizer vs LTX's reference tokenisation (``transformers.AutoTokenizer`` with ``padding="max_length"``,
left padding, truncation) on a SentencePiece model trained here; all three sources give the same ids."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from rs_ltxv.ltx.errors import CheckpointError, InputError
from rs_ltxv.ltx.loading.gemma import load_gemma_tokenizer
from rs_ltxv.ltx.text.tokenizer import GemmaTokenizer

from reference import gemma_ref as G

PROMPTS = ["  A cat walks  slowly across 12345 ÄÖÜ!  ", "hi", "x" * 100, "\tline1\nline2 😊 ", "",
           "The ocean waves crash on the rocks at sunset."]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A folder with tokenizer.model and one with the tokenizer.json transformers converts it to."""
    from transformers import AutoTokenizer

    root = tmp_path_factory.mktemp("tok")
    sp = G.write_tokenizer_folder(G.train_tiny_sentencepiece(), root / "sp")
    AutoTokenizer.from_pretrained(str(sp)).save_pretrained(str(root / "json"))
    assert (root / "json" / "tokenizer.json").is_file()
    return sp, root / "json"


@pytest.mark.parametrize("max_length", [24, 64])
def test_matches_reference_tokenisation(folders, max_length):
    sp_folder, _ = folders
    ref_ids, ref_mask = G.hf_reference_tokenize(sp_folder, PROMPTS, max_length)
    batch = GemmaTokenizer.from_file(sp_folder / "tokenizer.model", max_length=max_length)(PROMPTS)
    assert torch.equal(batch.ids, ref_ids)
    assert torch.equal(batch.mask, ref_mask)


def test_all_sources_agree(folders, tmp_path):
    sp_folder, json_folder = folders
    model_bytes = (sp_folder / "tokenizer.model").read_bytes()
    comfy = tmp_path / "gemma_3_tiny.safetensors"
    save_file({"model.norm.weight": torch.zeros(4), "spiece_model": torch.tensor(list(model_bytes),
                                                                                  dtype=torch.uint8)}, str(comfy))
    toks = [GemmaTokenizer.from_file(sp_folder), GemmaTokenizer.from_file(json_folder / "tokenizer.json"),
            GemmaTokenizer.from_bytes(model_bytes), load_gemma_tokenizer(comfy), load_gemma_tokenizer(json_folder)]
    first = toks[0](PROMPTS)
    for tok in toks[1:]:
        out = tok(PROMPTS)
        assert torch.equal(out.ids, first.ids)
        assert torch.equal(out.mask, first.mask)


def test_ltx_rules(folders):
    tok = GemmaTokenizer.from_file(folders[0], max_length=16)
    assert tok.max_length == 16
    assert GemmaTokenizer.from_file(folders[0]).max_length == 1024
    ids = tok.encode("  hi  ")
    # BOS, stripped, no EOS
    assert ids[0] == 2 == tok.bos_id
    assert ids == tok.encode("hi")
    assert 1 not in ids
    long = tok.encode("word " * 50)
    # truncated, BOS kept
    assert len(long) == 16
    assert long[0] == 2
    batch = tok(["hi", "word " * 50])
    assert batch.ids.shape == (2, 16)
    assert batch.ids.dtype == torch.int64
    n = len(ids)
    assert batch.ids[0, : 16 - n].eq(0).all()
    assert batch.mask[0].tolist() == [0] * (16 - n) + [1] * n
    assert batch.mask[1].all()
    assert tok(["hi", "hello there"], pad_to=0).ids.shape[1] == len(tok.encode("hello there"))


def test_errors_are_clear(tmp_path, folders):
    with pytest.raises(CheckpointError, match=r"no tokenizer\.model or tokenizer\.json"):
        GemmaTokenizer.from_file(tmp_path)
    bad = tmp_path / "tokenizer.txt"
    bad.write_text("x")
    with pytest.raises(CheckpointError, match="unknown tokenizer format"):
        GemmaTokenizer.from_file(bad)
    with pytest.raises(CheckpointError, match="corrupt"):
        GemmaTokenizer.from_bytes(b"not a model")
    plain = tmp_path / "weights.safetensors"
    save_file({"model.norm.weight": torch.zeros(4)}, str(plain))
    with pytest.raises(CheckpointError, match="spiece_model"):
        load_gemma_tokenizer(plain)
    with pytest.raises(InputError, match="string"):
        GemmaTokenizer.from_file(folders[0]).encode(None)  # type: ignore[arg-type]
