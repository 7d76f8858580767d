"""Every way a user can get the command line wrong ends in one ``error:`` line and a non-zero exit, before any
model is loaded — never a traceback. Table-driven over bad settings, bad files and bad paths for each command."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from rs_ltxv.__main__ import MAX_MESSAGE, main, one_line
from rs_ltxv.ltx.tiny import write_tiny_checkpoint


def write_image(path: Path, rgb: np.ndarray) -> None:
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("png")
        stream.height, stream.width, stream.pix_fmt = rgb.shape[0], rgb.shape[1], "rgb24"
        out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())


def write_audio(path: Path, wave: np.ndarray, rate: int) -> None:
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray((wave * 32767).astype(np.int16), format="s16", layout="mono")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode())


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("cli-errors")
    write_image(d / "img.png", np.full((64, 96, 3), 128, np.uint8))
    write_audio(d / "tone.wav", np.sin(np.linspace(0, 2 * math.pi * 440, 16000))[None].astype(np.float32), 16000)
    (d / "notes.txt").write_text("not a model\n")
    (d / "trunc.safetensors").write_bytes((1 << 20).to_bytes(8, "little") + b'{"a": ')
    (d / "corrupt.latents.safetensors").write_bytes(b"\x00" * 16)
    (d / "a:b").mkdir()
    write_image(d / "a:b" / "colon.png", np.full((64, 96, 3), 50, np.uint8))
    write_image(d / "tiny.png", np.full((1, 1, 3), 9, np.uint8))
    write_audio(d / "short.wav", np.zeros((1, 50), np.float32), 16000)  # 3 ms: below the mel front end's minimum
    (d / "previews" / "step_0001.png").mkdir(parents=True)  # a sub-folder named like the first preview file
    (d / "loras").mkdir()
    ckpt = write_tiny_checkpoint(d / "tiny.safetensors", "2.3")
    return {"dir": str(d), "png": str(d / "img.png"), "wav": str(d / "tone.wav"), "txt": str(d / "notes.txt"),
            "trunc": str(d / "trunc.safetensors"), "corrupt": str(d / "corrupt.latents.safetensors"),
            "colon_png": str(d / "a:b" / "colon.png"),
            "tiny_png": str(d / "tiny.png"), "ckpt": str(ckpt), "missing": str(d / "missing.safetensors"),
            "short_wav": str(d / "short.wav"), "previews": str(d / "previews"), "lora_dir": str(d / "loras")}


GEN = ["generate", "--checkpoint", "{ckpt}", "--text-encoder", "{dir}", "--prompt", "a fox",
       "--output", "{dir}/out/x.mp4"]

# (argv after the command's required arguments, words the one error line must contain)
GENERATE_CASES: list[tuple[list[str], str]] = [
    (["--steps", "0"], "steps"),
    (["--steps", "-3"], "steps"),
    (["--fps", "nan"], "fps"),
    (["--fps", "inf"], "fps"),
    (["--fps", "0"], "fps"),
    (["--frames", "100"], "8·k + 1"),
    (["--frames", "0"], "or auto"),
    (["--width", "100"], "multiple of 32"),
    (["--height", "-64"], "height"),
    (["--width", "1000000"], "width"),
    (["--seed", str(2**70)], "seed"),
    (["--seed", "-1"], "seed"),
    (["--seed", "abc"], "seed"),
    (["--cfg", "nan"], "cfg"),
    (["--audio-cfg", "inf"], "cfg"),
    (["--stg", "nan"], "stg"),
    (["--attention", "bogus"], "attention"),
    (["--ff-chunks", "0"], "chunks"),
    (["--ffn-chunks", "some"], "whole number of chunks (1 = off) or auto"),
    (["--offload", "yes"], "--offload takes no value"),
    (["--vram", "24GB"], "--vram is the budget of --ffn-chunks auto / --offload auto"),
    (["--ffn-chunks", "auto", "--vram", "24 GX"], "--vram"),
    (["--offload", "auto", "--vram", "1MiB"], "does not fit 1"),
    (["--ffn-chunks", "auto", "--vram", "1MiB", "--frames", "9"], "does not fit 1"),
    (["--offload", "auto", "--gpus", "2"], "--offload streams the weights"),
    (["--sampler", "dpm"], "sampler"),
    (["--lora", "{missing}"], "no such file"),
    (["--lora", "{missing}:0.5"], "no such file"),
    (["--lora", "{ckpt}:nan"], "finite number"),
    (["--lora", "{ckpt}:abc"], "strength 'abc'"),
    (["--lora", "{ckpt}"], "holds no LoRA weights"),
    (["--lora", "{txt}"], "cannot read"),
    (["--lora", "{lora_dir}"], "is a folder; give a LoRA .safetensors file"),
    (["--lora", "{trunc}:0.5"], "cannot read"),
    (["--reference-video", "{missing}"], "cannot read the video"),
    (["--reference-video", "{txt}"], "--reference-video"),
    (["--reference-strength", "0.5"], "no effect without --reference-video"),
    (["--reference-video", "{png}", "--reference-strength", "2"], "strength must be a number from 0 to 1"),
    (["--reference-video", "{png}", "--reference-downscale-factor", "3"], "multiple of 96"),
    (["--reference-video", "{png}", "--reference-downscale-factor", "0"], "whole number from 1 to 64"),
    (["--reference-video", "{png}", "--reference-downscale-factor", "-2"], "--reference-downscale-factor -2: must be"),
    (["--image", "{png}:abc"], "frame"),
    (["--image", "{png}:0:abc"], "strength"),
    (["--image", "{png}:0:2.0"], "strength"),
    (["--image", "{png}:500"], "frame"),
    (["--image", "{wav}"], "image"),
    (["--image", "{dir}/missing.png"], "image"),
    (["--image", "{dir}"], "image"),
    (["--audio", "{dir}/missing.wav"], "audio"),
    (["--audio", "{txt}"], "Give an audio file (WAV, MP3"),
    (["--audio", "{short_wav}"], "--audio"),
    (["--audio", "{short_wav}"], "audio is too short: 50 samples at 16000 Hz"),
    (["--reference-audio", "{dir}/missing.wav"], "--reference-audio"),
    (["--reference-audio", "{txt}"], "--reference-audio"),
    (["--reference-audio", "{short_wav}"], "--reference-audio / --identity-guidance: reference_audio is too short"),
    (["--identity-guidance", "2"], "no effect without --reference-audio"),
    (["--reference-audio", "{wav}", "--identity-guidance", "-1"], "identity_guidance must be a finite number"),
    (["--reference-audio", "{wav}", "--identity-guidance", "nan"], "identity_guidance must be a finite number"),
    (["--extend-from", "{dir}/missing.latents.safetensors"], "extend"),
    (["--extend-from", "{corrupt}"], "extend"),
    (["--extend-from", "{ckpt}"], "video"),
    (["--new-frames", "7", "--extend-from", "{corrupt}"], "new frames"),
    (["--new-frames", "16"], "without --extend-from"),
    (["--extend-from", "{corrupt}", "--frames", "17"], "keeps the clip's size"),
    (["--checkpoint", "{missing}"], "missing.safetensors"),
    (["--checkpoint", "{txt}"], "notes.txt"),
    (["--checkpoint", "{trunc}"], "trunc.safetensors"),
    (["--output", "{txt}/x.mp4"], "output"),
    (["--output", "{dir}"], "output"),
    (["--stg-block", "99"], "STG block"),
    (["--stg-block", "99"], "or --stg-block N with N in 0…1 for this model, or --stg 0 to turn STG off"),
    (["--upsampler", "{missing}"], "missing.safetensors"),
    (["--device", "tpu"], "device"),
    (["--device", "meta"], "device"),
    (["--output", "{dir}/clip.png"], ".mp4"),
    (["--output", "{dir}/newdir/"], "folder"),
    (["--output", "/proc/x.mp4"], "cannot be written"),
    (["--image", "{tiny_png}"], "2×2"),
    (["--preview-dir", "{txt}"], "--preview-dir"),
    (["--preview-dir", ""], "--preview-dir is empty"),
    (["--preview-dir", "{previews}"], "holds a sub-folder named like a preview file (step_0001.png); pick another"),
    (["--preview-dir", "/proc/previews"], "--preview-dir"),
    (["--preview-dir", "{dir}/previews", "--gpus", "2"], "--preview-dir has no effect with --gpus"),
    (["--server", "x"], "unrecognized"),
]

OTHER_CASES: list[tuple[list[str], str]] = [
    ([], "command"),
    (["bogus"], "bogus"),
    (["generate", "--checkpoint", "x"], "required"),
    (["info", "{missing}"], "missing.safetensors"),
    (["info", "{txt}"], "notes.txt"),
    (["info", "{trunc}"], "trunc.safetensors"),
    (["info", "{dir}"], "is a folder"),
    (["tiny", "{dir}", "--version", "2.3"], "is a folder"),
    (["tiny", "{dir}/t.safetensors", "--version", "9"], "version"),
    (["demo", "--seconds", "0", "-o", "{dir}/demo.mp4"], "seconds"),
    (["demo", "--width", "100", "-o", "{dir}/demo.mp4"], "multiple of 32"),
    (["demo", "--steps", "0", "-o", "{dir}/demo.mp4"], "steps"),
    (["submit", "{dir}/missing.json"], "missing.json"),
    (["submit", "{dir}/missing.json", "--timeout", "nan"], "--timeout"),
    (["submit", "{dir}/missing.json", "--timeout", "-1"], "--timeout"),
    (["submit", "{dir}/missing.json", "-o", "{txt}"], "is a file"),
    (["tiny", "{ckpt}"], "--overwrite"),
    (["tiny", "{dir}/model.mp4"], ".safetensors"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "768", "--height", "512", "--frames", "121", "--vram", "abc"],
     "--vram"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "768", "--height", "512", "--frames", "121", "--vram", "24 GX"],
     "--vram"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "770", "--height", "512", "--frames", "121"], "multiple of 32"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "768", "--height", "512", "--frames", "120"], "8·k + 1"),
    (["plan", "--checkpoint", "{missing}", "--width", "768", "--height", "512", "--frames", "121"],
     "missing.safetensors"),
    (["plan", "--checkpoint", "{txt}", "--width", "768", "--height", "512", "--frames", "121"], "notes.txt"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "768", "--height", "512", "--frames", "121", "--vram", "-5GB"],
     "--vram must be a positive size"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "768", "--height", "512", "--frames", "121", "--vram=-5GB"],
     "--vram must be a positive size"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "768", "--height", "512", "--frames", "121", "--vram", "0"],
     "--vram must be a positive size"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "768", "--height", "-64", "--frames", "121"],
     "height must be positive"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "0", "--height", "512", "--frames", "121"],
     "width must be positive"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "768", "--height", "512", "--frames", "121", "--vae", "{missing}"],
     "--vae"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "768", "--height", "512", "--frames", "121", "--vae", "{txt}"],
     "--vae"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "768", "--height", "512", "--frames", "121", "--vram", "1MB"],
     "does not fit"),
    (["plan", "--checkpoint", "{ckpt}", "--width", "768", "--height", "512", "--frames", "121", "--vram", "1MB"],
     "this job needs at least"),
]


def _fill(argv: list[str], files: dict[str, str]) -> list[str]:
    return [a.format(**files) for a in argv]


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def _assert_one_error_line(code: int, err: str, words: str) -> None:
    lines = err.strip().splitlines()
    assert code != 0
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert words.lower() in lines[0].lower(), err
    assert len(lines[0]) <= MAX_MESSAGE + 200


@pytest.mark.parametrize(("extra", "words"), GENERATE_CASES, ids=[" ".join(c[0]) for c in GENERATE_CASES])
def test_generate_bad_input_is_one_line(files, capsys, extra, words):
    argv = _fill(GEN, files)
    for i in range(0, len(extra), 2):  # replace a flag given in GEN instead of repeating it
        if extra[i] in argv and extra[i] != "--image":
            del argv[argv.index(extra[i]):argv.index(extra[i]) + 2]
    code, err = _run(argv + _fill(extra, files), capsys)
    _assert_one_error_line(code, err, words)
    assert not (Path(files["dir"]) / "out").exists()  # nothing written, no folder made


@pytest.mark.parametrize(("argv", "words"), OTHER_CASES, ids=[" ".join(c[0]) or "(none)" for c in OTHER_CASES])
def test_other_commands_bad_input_is_one_line(files, capsys, argv, words):
    code, err = _run(_fill(argv, files), capsys)
    _assert_one_error_line(code, err, words)


def test_image_path_with_colons_parses(files, capsys):
    """A path that itself contains ':' still parses; the frame/strength suffix is read from the right."""
    from rs_ltxv.ltx.pipeline.cli import parse_image_spec

    assert parse_image_spec(files["colon_png"]) == (files["colon_png"], 0, 1.0)
    assert parse_image_spec(f"{files['colon_png']}:-1:0.5") == (files["colon_png"], -1, 0.5)
    assert parse_image_spec(f"{files['colon_png']}:8") == (files["colon_png"], 8, 1.0)
    assert parse_image_spec("C:\\pics\\a.png:3") == ("C:\\pics\\a.png", 3, 1.0)


def test_one_line_bounds_long_messages():
    text = one_line("x" * 300_000 + "\n" + "tail")
    assert len(text) <= MAX_MESSAGE + 60
    assert text.endswith("tail")
    assert "\n" not in text


def test_ctrl_c_is_one_line(tmp_path):
    """SIGINT while the demo samples: one line, exit 130, no MP4 and no temporary file left behind."""
    import threading

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    def default_sigint() -> None:
        # a shell starts commands with SIGINT deliverable; the test process may have it blocked or ignored (the mask
        # and SIG_IGN are inherited across exec), which would keep the child from ever seeing the Ctrl-C
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen([sys.executable, "-m", "rs_ltxv", "demo", "--seconds", "8", "--steps", "200",
                             "-o", str(tmp_path / "demo.mp4")], stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=default_sigint)
    seen: list[str] = []
    sampling = threading.Event()

    def read() -> None:  # the progress bar on stderr says when sampling has started
        while chunk := proc.stderr.read(1):
            seen.append(chunk)
            if "step" in "".join(seen[-200:]) and "1/" in "".join(seen[-200:]):
                sampling.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert sampling.wait(timeout=180), "".join(seen)[-3000:]
        masks = {k: v for k, v in (line.split(":\t") for line in Path(f"/proc/{proc.pid}/status").read_text()
                                     .splitlines() if line.startswith(("SigBlk", "SigIgn", "SigCgt")))}
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no exit 60 s after SIGINT; child signal masks {masks}; "
                                 f"stderr tail {''.join(seen)[-1500:]!r}") from None
        reader.join(timeout=10)
    finally:
        proc.kill()
    err = "".join(seen)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err, err[-4000:]
    assert err.strip().splitlines()[-1].split("\r")[-1] == "error: interrupted (Ctrl-C)."
    assert not (tmp_path / "demo.mp4").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-models"]


RETAKE = ["retake", "--checkpoint", "{ckpt}", "--text-encoder", "{dir}", "--prompt", "a wolf",
          "--from", "{clip}", "--output", "{dir}/out/r.mp4"]

# (argv after retake's required arguments, words the one error line must contain); the clip: 4 latent frames
# (25 pixel frames) at 25 fps = 1 s, with audio
RETAKE_CASES: list[tuple[list[str], str]] = [
    (["--start-time", "0.5", "--end-time", "0.5"], "must be after --start-time"),
    (["--start-time", "0.8", "--end-time", "0.2"], "must be after --start-time"),
    (["--start-time", "-1", "--end-time", "0.5"], "outside the clip"),
    (["--start-time", "1.5", "--end-time", "2"], "outside the clip"),
    (["--start-time", "0.5", "--end-time", "1.5"], "runs past the end"),
    (["--start-time", "nan", "--end-time", "0.5"], "finite"),
    (["--start-time", "0", "--end-time", "0.5", "--no-video", "--no-audio"], "nothing to regenerate"),
    (["--start-time", "0", "--end-time", "0.5", "--from", "{silent}", "--no-video"], "no audio latent"),
    (["--start-time", "0", "--end-time", "0.5", "--from", "{dir}/missing.latents.safetensors"], "--from"),
    (["--start-time", "0", "--end-time", "0.5", "--from", "{corrupt}"], "--from"),
    (["--start-time", "0", "--end-time", "0.5", "--from", "{ckpt}"], "video"),
    (["--start-time", "0", "--end-time", "0.5", "--width", "64"], "--width has no effect with retake"),
    (["--start-time", "0", "--end-time", "0.5", "--image", "{png}"], "--image has no effect with retake"),
    (["--start-time", "0", "--end-time", "0.5", "--upsampler", "{ckpt}"], "--upsampler has no effect"),
    (["--start-time", "0", "--end-time", "0.5", "--extend-from", "{clip}"], "--extend-from has no effect"),
    (["--start-time", "0", "--end-time", "0.5", "--steps", "0"], "steps"),
    (["--start-time", "0", "--end-time", "0.5", "--output", "{txt}/x.mp4"], "output"),
    (["--start-time", "0", "--end-time", "0.5", "--from", "{wide}"], "channels"),
    (["--start-time", "0"], "--end-time"),
    (["--start-time", "0", "--end-time", "0.5", "--output", "{dir}/clip.mp4"], "over the --from file; pick another -o"),
    (["--start-time", "0", "--end-time", "0.5", "--from", "{empty}"], "--from"),
    (["--start-time", "0", "--end-time", "0.5", "--from", "{empty}"], "is empty (no latent frames"),
]


@pytest.fixture(scope="module")
def retake_files(files) -> dict[str, str]:
    import torch
    from safetensors.torch import save_file

    d = Path(files["dir"])
    save_file({"video": torch.zeros(1, 128, 4, 2, 2), "audio": torch.zeros(1, 8, 25, 16)},
              str(d / "clip.latents.safetensors"), metadata={"fps": "25.0"})
    save_file({"video": torch.zeros(1, 128, 4, 2, 2)}, str(d / "silent.latents.safetensors"),
              metadata={"fps": "25.0"})
    save_file({"video": torch.zeros(1, 64, 4, 2, 2)}, str(d / "wide.latents.safetensors"), metadata={"fps": "25.0"})
    save_file({"video": torch.zeros(1, 128, 0, 2, 2)}, str(d / "empty.latents.safetensors"), metadata={"fps": "25.0"})
    return {**files, "clip": str(d / "clip.latents.safetensors"), "silent": str(d / "silent.latents.safetensors"),
            "wide": str(d / "wide.latents.safetensors"), "empty": str(d / "empty.latents.safetensors")}


@pytest.mark.parametrize(("extra", "words"), RETAKE_CASES, ids=[" ".join(c[0]) for c in RETAKE_CASES])
def test_retake_bad_input_is_one_line(retake_files, capsys, extra, words):
    argv = _fill(RETAKE, retake_files)
    for i in range(0, len(extra) - 1):  # replace a flag given in RETAKE instead of repeating it
        if extra[i] in ("--from", "--output") and extra[i] in argv:
            del argv[argv.index(extra[i]):argv.index(extra[i]) + 2]
    code, err = _run(argv + _fill(extra, retake_files), capsys)
    _assert_one_error_line(code, err, words)
    assert not (Path(retake_files["dir"]) / "out").exists()  # nothing written, no folder made


def _tiny_loras(files) -> tuple[str, str]:
    """A LoRA that fits the tiny checkpoint and one of the same layers made for a wider model."""
    import torch
    from safetensors.torch import load_file

    from rs_ltxv.ltx.tiny_parts import write_tiny_lora

    d = Path(files["dir"])
    state = load_file(files["ckpt"])
    good = write_tiny_lora(d / "good_lora.safetensors", state)
    wide = {k: torch.zeros(v.shape[0] * 2, v.shape[1]) if v.ndim == 2 else v for k, v in state.items()}
    other = write_tiny_lora(d / "other_model_lora.safetensors", wide)
    return str(good), str(other)


def test_a_lora_that_does_not_fit_is_named_among_several(files):
    """The check against the checkpoint's layers (before any weight is read) names the --lora file that fails."""
    from rs_ltxv.ltx.errors import InputError
    from rs_ltxv.ltx.loading import open_checkpoint
    from rs_ltxv.ltx.pipeline.cli import read_lora_patches
    from rs_ltxv.ltx.pipeline.cli_inputs import parse_lora_spec

    good, other = _tiny_loras(files)
    ckpt = open_checkpoint(files["ckpt"])
    assert len(read_lora_patches((parse_lora_spec(good),), ckpt)) == 5
    with pytest.raises(InputError) as info:
        read_lora_patches((parse_lora_spec(good), parse_lora_spec(other)), ckpt)
    text = str(info.value)
    assert text.startswith("--lora other_model_lora.safetensors: its patch for "), text
    assert "does not fit the weight" in text
    assert "good_lora" not in text
    assert text.count("LoRA ") == 1


def test_a_lora_error_names_the_file_once(files, capsys):
    code, err = _run([*_fill(GEN, files), "--lora", files["txt"]], capsys)
    _assert_one_error_line(code, err, "cannot read it as a .safetensors file")
    assert err.count("notes.txt") == 1, err
    assert "LoRA " not in err, err


def test_progress_bar_ends_its_line(capsys):
    """The output path (stdout) and "error: interrupted" come on a line of their own after the bar, whether the
    run finished its steps or not."""
    from rs_ltxv.ltx.pipeline.cli import _progress

    for steps_done in (2, 1):
        update, close = _progress()
        for done in range(1, steps_done + 1):
            update(done, 2)
        close()
        err = capsys.readouterr().err
        assert f"{steps_done}/2" in err
        assert err.endswith("\n"), repr(err[-80:])
        assert not err.endswith("\n\n"), repr(err[-80:])


def test_reference_flags_without_a_lora_warn_and_run_on(files, capsys):
    """--reference-video / --reference-audio without --lora: one warning line each once every check passed (the
    run goes on; here it stops later, at the STG block the tiny model lacks)."""
    code, err = _run([*_fill(GEN, files), "--reference-video", files["png"], "--reference-audio", files["wav"],
                      "--width", "64", "--height", "64", "--frames", "9"], capsys)
    lines = err.strip().splitlines()
    assert code != 0, err
    assert lines[-1].startswith("error: "), err
    assert "STG block" in lines[-1], err
    assert lines[:-1] == [
        "warning: --reference-video without --lora: the base model was not trained on reference tokens; load the "
        "IC-LoRA with --lora (running anyway).",
        "warning: --reference-audio without --lora: the base model was not trained on reference tokens; load the "
        "ID-LoRA with --lora (running anyway)."], err


def test_reference_downscale_factor_overrides_the_lora_metadata(files, capsys):
    """The flag wins over the LoRA's reference_downscale_factor with one warning line (README: an override)."""
    import argparse

    from safetensors.torch import load_file

    from rs_ltxv.ltx.pipeline.cli import add_generate_arguments, prepare_request
    from rs_ltxv.ltx.tiny_parts import write_tiny_lora

    ic = write_tiny_lora(Path(files["dir"]) / "ic.safetensors", load_file(files["ckpt"]),
                         metadata={"reference_downscale_factor": "2"})
    parser = argparse.ArgumentParser()
    add_generate_arguments(parser)
    base = [*_fill(GEN[1:], files), "--lora", str(ic), "--reference-video", files["png"], "--width", "192",
            "--height", "192", "--frames", "9"]
    req, _ = prepare_request(parser.parse_args([*base, "--reference-downscale-factor", "1"]))
    assert req.reference_videos[0].downscale_factor == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "warning: --reference-downscale-factor 1 overrides the LoRA metadata (the --lora file records "
        "reference_downscale_factor 2)."]
    req, _ = prepare_request(parser.parse_args(base))
    assert req.reference_videos[0].downscale_factor == 2
    assert capsys.readouterr().err == ""


def test_stg_block_message_names_the_request_fields():
    """The library's message (a Request run on a model without block 28) names the fields to set."""
    from rs_ltxv.ltx.errors import InputError
    from rs_ltxv.ltx.pipeline.checks import check_stg_blocks
    from rs_ltxv.ltx.pipeline.guidance import GuidanceParams

    with pytest.raises(InputError, match=r"audio_guidance stg_blocks with blocks in 0…1 for this model \(e.g. "
                       r"GuidanceParams\(stg_blocks=\(1,\)\)\), or stg=0 in audio_guidance to turn STG off"):
        check_stg_blocks({"audio": GuidanceParams(cfg=3.0, stg=1.0, stg_blocks=(28,))}, 2)


def test_audio_read_errors_say_what_to_give(files):
    from rs_ltxv.ltx.errors import InputError
    from rs_ltxv.ltx.pipeline.media import load_audio

    with pytest.raises(InputError) as info:
        load_audio(files["txt"])
    text = str(info.value)
    assert "Errno" not in text
    assert "Invalid data found" in text
    assert "Give an audio file (WAV, MP3, FLAC" in text
