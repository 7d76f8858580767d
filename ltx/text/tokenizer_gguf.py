"""A Gemma-3 SentencePiece tokenizer rebuilt from a GGUF file's ``tokenizer.ggml.*`` vocabulary.

llama.cpp's converter stores the SentencePiece pieces (``tokenizer.ggml.tokens``), their scores (for Gemma-3's BPE
model: merge ranks as negative numbers) and their types (``tokenizer.ggml.token_type``, llama.cpp's numbering in
:data:`PIECE_TYPES`), plus the special ids. :func:`sentencepiece_model_bytes` writes them back into a serialised
SentencePiece ``ModelProto`` with Gemma-3's settings — BPE, byte fallback, split digits, the identity normaliser,
whitespace escaped as ``▁``, no dummy prefix (``tokenizer.ggml.add_space_prefix``) — so the ``sentencepiece`` package
tokenises exactly like Gemma's own ``tokenizer.model`` (checked against public Gemma-3 ids in
``tests/test_gemma_gguf.py``).

One conversion detail: llama.cpp stores Gemma's user-defined whitespace-run pieces (``"  "``, ``"   "``, …) with real
spaces, while SentencePiece matches user-defined pieces after escaping spaces to ``▁``; they are written back with
``▁`` or they would never match (``"a  b"`` would lose its two-space token 138).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import CheckpointError
from .tokenizer import GemmaTokenizer, _module

SPM_MODEL = "llama"  # tokenizer.ggml.model of SentencePiece vocabularies (llama, gemma, …)
ESCAPED_SPACE = "\u2581"
#: llama.cpp token type → SentencePiece piece type name (``ModelProto.SentencePiece.Type``)
PIECE_TYPES = {1: "NORMAL", 2: "UNKNOWN", 3: "CONTROL", 4: "USER_DEFINED", 5: "UNUSED", 6: "BYTE"}
#: (GGUF key, trainer_spec field, Gemma-3 default)
SPECIAL_IDS = (("tokenizer.ggml.padding_token_id", "pad_id", 0), ("tokenizer.ggml.eos_token_id", "eos_id", 1),
               ("tokenizer.ggml.bos_token_id", "bos_id", 2), ("tokenizer.ggml.unknown_token_id", "unk_id", 3))


def _vocabulary(metadata: Mapping[str, Any], what: str) -> tuple[list[str], list[float], list[int]]:
    model = metadata.get("tokenizer.ggml.model")
    tokens = metadata.get("tokenizer.ggml.tokens")
    if model is None or not tokens:
        raise CheckpointError(f"{what} carries no tokenizer (no 'tokenizer.ggml.tokens'). Use a GGUF converted by "
                              "llama.cpp with its vocabulary, or put tokenizer.model next to it.")
    if model != SPM_MODEL:
        raise CheckpointError(f"{what} has a '{str(model)[:40]}' tokenizer; Gemma-3 uses a SentencePiece vocabulary "
                              f"(tokenizer.ggml.model = '{SPM_MODEL}'). The file is not a Gemma-3 text encoder.")
    scores = metadata.get("tokenizer.ggml.scores")
    types = metadata.get("tokenizer.ggml.token_type")
    for key, value, kinds in (("tokens", tokens, str), ("scores", scores, int | float), ("token_type", types, int)):
        if value is not None and not (isinstance(value, list) and all(isinstance(v, kinds) for v in value)):
            raise CheckpointError(f"{what}: 'tokenizer.ggml.{key}' is not an array of "
                                  f"{getattr(kinds, '__name__', 'number')}s. The file is corrupt or incomplete.")
    if scores is None or types is None or not len(tokens) == len(scores) == len(types):
        raise CheckpointError(f"{what}: the tokenizer arrays do not match (tokens {len(tokens)}, scores "
                              f"{None if scores is None else len(scores)}, types "
                              f"{None if types is None else len(types)}). The file is corrupt or incomplete.")
    unknown = sorted({int(t) for t in types} - set(PIECE_TYPES))
    if unknown:
        raise CheckpointError(f"{what}: unknown token type(s) {unknown} in 'tokenizer.ggml.token_type'.")
    return list(tokens), [float(s) for s in scores], [int(t) for t in types]


def sentencepiece_model_bytes(metadata: Mapping[str, Any], *, what: str = "The GGUF file") -> bytes:
    """The serialised SentencePiece ``ModelProto`` of a GGUF's ``tokenizer.ggml.*`` metadata (see module doc).

    No ltx-core counterpart (it reads ``tokenizer.model`` through Hugging Face); ``what`` names the file in errors.

    Raises:
        CheckpointError: no tokenizer in the metadata, not a SentencePiece vocabulary, inconsistent arrays, unknown
            token types or special ids, or ``sentencepiece`` is not installed.
    """
    tokens, scores, types = _vocabulary(metadata, what)
    pb = _module("sentencepiece.sentencepiece_model_pb2", "a GGUF tokenizer")
    kind = pb.ModelProto.SentencePiece
    model = pb.ModelProto()
    spec = model.trainer_spec
    spec.model_type, spec.vocab_size = pb.TrainerSpec.BPE, len(tokens)
    spec.byte_fallback, spec.split_digits = True, True
    for key, field, default in SPECIAL_IDS:
        value = metadata.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(tokens):
            raise CheckpointError(f"{what}: {key} = {str(value)[:40]} is not an id of the {len(tokens)}-piece "
                                  "vocabulary.")
        setattr(spec, field, value)
    norm = model.normalizer_spec
    norm.name = "identity"
    norm.add_dummy_prefix = bool(metadata.get("tokenizer.ggml.add_space_prefix", False))
    norm.remove_extra_whitespaces, norm.escape_whitespaces = False, True
    for index, (token, score, token_type) in enumerate(zip(tokens, scores, types, strict=True)):
        piece = model.pieces.add()
        whitespace_run = token_type == 4 and token != "" and set(token) == {" "}
        piece.piece = token.replace(" ", ESCAPED_SPACE) if whitespace_run else token
        piece.score = score
        name = PIECE_TYPES[token_type]
        if index == spec.unk_id:
            name = "UNKNOWN"  # SentencePiece needs exactly one unknown piece; llama.cpp may mark <unk> as control
        elif name == "UNKNOWN":
            name = "CONTROL"
        piece.type = getattr(kind, name)
    return model.SerializeToString()


def tokenizer_from_gguf_metadata(metadata: Mapping[str, Any], *, what: str = "The GGUF file",
                                 **kw) -> GemmaTokenizer:
    """:class:`GemmaTokenizer` over the vocabulary of a GGUF file's metadata (``GGUFFile.metadata``).

    Raises:
        CheckpointError: as :func:`sentencepiece_model_bytes`, or the rebuilt model does not load.
    """
    return GemmaTokenizer.from_bytes(sentencepiece_model_bytes(metadata, what=what), **kw)
