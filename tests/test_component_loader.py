"""The component loader's shared parts: the :class:`TensorSource` protocol and its implementations, the config
resolver (given → metadata → inferred), the one materialise path (quantised Linear weights chosen by what the source
declares), the distilled guess, and the prompt-encoder factory the loading layer installs in the text layer."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest
import torch
from gguf import GGMLQuantizationType as Q
from safetensors.torch import save_file
from torch import nn

from rs_ltxv.gguf_loader import GGUFLinear
from rs_ltxv.gguf_loader.writer import encode, write_gguf
from rs_ltxv.ltx.errors import CheckpointError, ConfigError
from rs_ltxv.ltx.loading import TensorInfo, is_distilled, materialize, open_checkpoint, resolve_config
from rs_ltxv.ltx.loading.gguf_checkpoint import GGUFCheckpointFile
from rs_ltxv.ltx.loading.prompt_encoder import load_prompt_encoder
from rs_ltxv.ltx.loading.safetensors_file import SafetensorsFile
from rs_ltxv.ltx.loading.source import StateDictSource, as_source
from rs_ltxv.ltx.text.encoder import PromptEncoder
from rs_ltxv.ltx.tiny import write_tiny_checkpoint

PROTOCOL = ("name", "tensors", "metadata", "config", "read", "quantized_type", "read_quantized")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(32, 4)
        self.norm = nn.LayerNorm(4)


def _state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) for k, v in Net().state_dict().items()}


class QuantisedProj(StateDictSource):
    """A source that declares ``proj.weight`` block-quantised (Q8_0) — no GGUF file, only the protocol."""

    def quantized_type(self, name: str):
        return Q.Q8_0 if name == "proj.weight" else None

    def read_quantized(self, name: str, *, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(encode(self.state[name], Q.Q8_0)).to(device)


@pytest.fixture
def files(tmp_path):
    state = _state()
    st = tmp_path / "net.safetensors"
    save_file(state, str(st), metadata={"config": '{"width": 4}'})
    gg = write_gguf(tmp_path / "net.gguf", state, lambda name, t: Q.Q8_0 if name == "proj.weight" else Q.F32)
    return state, st, gg


def test_every_source_implements_the_protocol(files):
    state, st, gg = files
    for source in (SafetensorsFile(st), GGUFCheckpointFile(gg), StateDictSource(state)):
        missing = [m for m in PROTOCOL if not hasattr(source, m)]
        assert not missing, f"{type(source).__name__} lacks {missing}"
        assert set(source.tensors) == set(state)
        assert all(isinstance(i, TensorInfo) for i in source.tensors.values())
        assert source.tensors["proj.weight"].shape == (4, 32)


def test_sources_declare_their_quantised_weights(files):
    _, st, gg = files
    assert SafetensorsFile(st).quantized_type("proj.weight") is None
    gguf = GGUFCheckpointFile(gg)
    assert gguf.quantized_type("proj.weight") == Q.Q8_0
    assert gguf.quantized_type("norm.weight") is None  # F32: a plain tensor
    assert gguf.tensors["proj.weight"].dtype == "Q8_0"
    with pytest.raises(CheckpointError, match="not stored block-quantised"):
        SafetensorsFile(st).read_quantized("proj.weight", device=torch.device("cpu"))


def test_plain_mappings_become_sources(files):
    state, st, _ = files
    assert isinstance(as_source(state), StateDictSource)
    source = SafetensorsFile(st)
    assert as_source(source) is source
    assert as_source(state, name="mine").name == "mine"


def test_one_materialise_path_follows_the_source(files):
    state, st, gg = files
    plain = materialize(Net, SafetensorsFile(st), {k: k for k in state}, what="net", dtype=torch.float64,
                        device="cpu")
    assert type(plain.proj) is nn.Linear
    assert plain.proj.weight.dtype == torch.float64
    assert torch.equal(plain.norm.weight, state["norm.weight"].double())
    for source in (GGUFCheckpointFile(gg), QuantisedProj(state)):
        model = materialize(Net, source, {k: k for k in state}, what="net", dtype=None, device="cpu")
        assert isinstance(model.proj, GGUFLinear), type(source).__name__
        assert torch.allclose(model.proj.weight, state["proj.weight"], atol=0.05)
        assert not model.training
        assert not any(p.requires_grad for p in model.parameters())
    dequantised = materialize(Net, QuantisedProj(state), {k: k for k in state}, what="net", dtype=torch.float32,
                              device="cpu", dequantize=True)
    assert type(dequantised.proj) is nn.Linear


def test_materialise_names_the_file_and_the_problem(files):
    state, st, _ = files
    names = {k: k for k in state if k != "norm.bias"}
    with pytest.raises(CheckpointError, match=r"net\.safetensors: the net does not match its config — missing 1"):
        materialize(Net, SafetensorsFile(st), names, what="net", dtype=None, device="cpu")
    wrong = {**state, "norm.weight": torch.zeros(5)}
    with pytest.raises(CheckpointError, match=r"wrong shape: norm\.weight: file \(5,\)"):
        materialize(Net, StateDictSource(wrong), {k: k for k in wrong}, what="net", dtype=None, device="cpu")


@pytest.mark.parametrize(("given", "stored", "expected"), [
    ({"width": 1}, {"net": {"width": 2}}, ("given", 1)),
    (None, {"net": {"width": 2}}, ("metadata", 2)),
    (None, {"other": {}}, ("inferred", 3)),
    (None, None, ("inferred", 3)),
])
def test_resolver_order(given, stored, expected):
    resolved = resolve_config("f.safetensors", given, lambda: stored, key="net", config_type=SimpleNamespace,
                              parse=lambda raw: SimpleNamespace(**raw), infer=lambda: SimpleNamespace(width=3))
    assert (resolved.source, resolved.config.width) == expected


def test_resolver_given_config_is_used_as_is_and_stored_is_not_read():
    given = SimpleNamespace(width=5)

    def stored():
        raise AssertionError("the stored config must not be read when a config is given")

    resolved = resolve_config("f", given, stored, key="net", config_type=SimpleNamespace, parse=None)
    assert resolved.config is given
    assert resolved.source == "given"


def test_resolver_errors_are_checkpoint_errors_naming_the_file():
    def bad(raw):
        raise ConfigError("Net config: width must be positive")

    with pytest.raises(CheckpointError, match=r"^f\.safetensors: Net config: width must be positive$"):
        resolve_config("f.safetensors", None, lambda: {"net": {}}, key="net", config_type=SimpleNamespace, parse=bad)
    with pytest.raises(CheckpointError, match=r"^f\.safetensors has no __metadata__\['config'\]\['net'\]; tell me"):
        resolve_config("f.safetensors", None, lambda: None, key="net", config_type=SimpleNamespace, parse=bad,
                       cannot_infer="tell me")

    def infer():
        raise CheckpointError("Cannot infer the heads")

    with pytest.raises(CheckpointError, match=r"^f\.safetensors: Cannot infer the heads$"):
        resolve_config("f.safetensors", None, lambda: None, key="net", config_type=SimpleNamespace, parse=bad,
                       infer=infer)


@pytest.mark.parametrize(("name", "model_version", "expected"), [
    ("ltx-2.3-22b-distilled.safetensors", None, True),
    ("/models/ltx-2.3-22b-Distilled-Q8_0.gguf", "", True),
    ("ltx-2.3-22b-dev.safetensors", "2.3.0-distilled", True),
    ("ltx-2.3-22b-dev.safetensors", "2.3.0", False),
    ("/distilled/ltx-2.3-22b-dev.safetensors", None, False),  # only the file name counts
])
def test_is_distilled(name, model_version, expected):
    assert is_distilled(name, model_version) is expected


def test_checkpoint_is_distilled(tmp_path):
    dev = open_checkpoint(write_tiny_checkpoint(tmp_path / "ltx-2.3-dev.safetensors"))
    assert dev.model_version == "2.3.0-tiny"
    assert not dev.is_distilled
    assert open_checkpoint(write_tiny_checkpoint(tmp_path / "ltx-2.3-distilled.safetensors")).is_distilled


def test_inspect_no_longer_shadows_the_standard_library():
    assert importlib.util.find_spec("rs_ltxv.ltx.loading.inspect") is None
    assert importlib.util.find_spec("rs_ltxv.ltx.loading.info") is not None


def test_known_gemma_sizes_live_with_the_gemma_config():
    from rs_ltxv.ltx.loading import gemma
    from rs_ltxv.ltx.text import gemma_config

    assert gemma.KNOWN_SIZES is gemma_config.KNOWN_SIZES
    assert gemma_config.KNOWN_SIZES[3840] == (1024, 8.0, 256)  # the 12B of LTX-2 / LTX-2.3


def test_load_prompt_encoder_reads_gemma_and_connectors(tmp_path):
    from rs_ltxv.ltx.tiny_parts import write_tiny_gemma

    ltx = write_tiny_checkpoint(tmp_path / "ltx.safetensors", dtype=torch.float32)
    gemma = write_tiny_gemma(tmp_path / "gemma")
    encoder = load_prompt_encoder(gemma, ltx, dtype=torch.float32, cache_size=0)
    assert encoder.cache_size == 0
    contexts = encoder.encode("a red fox")
    assert torch.isfinite(contexts.video).all()
    assert not hasattr(PromptEncoder, "from_files")  # one factory, in the loading layer
