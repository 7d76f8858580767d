#!/usr/bin/env bash
# A real ComfyUI for the ComfyUI integration tests on a CPU-only dev machine (DEVELOPERS.md, "ComfyUI").
#
#   scripts/setup_comfyui.sh [SOURCE]
#
# SOURCE (or $COMFYUI_SRC): a ComfyUI git repository, bare or not ($COMFYUI_REF, default master, is written out),
# or a plain ComfyUI folder (copied). Default: the bare mirror /work/.mirror/YellowRoseCx+ComfyUI/repo.
# Creates $COMFYUI_PATH (default /work/cache/comfyui) and $COMFYUI_VENV (default /work/cache/comfy-venv); a step
# already done is skipped. Needs the dev venv (scripts/dev.sh creates it): the ComfyUI venv reuses its packages,
# torch included, and never installs torch. Prints the two variables the tests read.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SRC="${1:-${COMFYUI_SRC:-/work/.mirror/YellowRoseCx+ComfyUI/repo}}"
REF="${COMFYUI_REF:-master}"
DEST="${COMFYUI_PATH:-/work/cache/comfyui}"
VENV="${COMFYUI_VENV:-/work/cache/comfy-venv}"
MAIN_VENV="${RS_LTXV_VENV:-.venv}"
case "$MAIN_VENV" in /*) ;; *) MAIN_VENV="$REPO/$MAIN_VENV" ;; esac
# torchvision / torchaudio builds to use beside torch 2.13 (PyPI's: CUDA-only, patched to load below)
TORCHVISION="${TORCHVISION_VERSION:-0.28.0}"
TORCHAUDIO="${TORCHAUDIO_VERSION:-2.11.0}"
log() { echo "[setup_comfyui] $*" >&2; }

[ -x "$MAIN_VENV/bin/python" ] || { log "no dev venv at $MAIN_VENV: run scripts/dev.sh first"; exit 1; }

# 1. The ComfyUI tree. Written blob by blob because `git archive` stops at the first blob missing from a partial
#    mirror (this one lacks two tokenizer files LTX does not use); missing blobs are skipped with a warning.
if [ ! -f "$DEST/main.py" ]; then
  tmp="$DEST.partial"
  rm -rf "$tmp" && mkdir -p "$tmp"
  if [ -f "$SRC/main.py" ]; then
    cp -a "$SRC/." "$tmp/"
  else
    log "writing $REF ($(git -C "$SRC" rev-parse "$REF")) from $SRC to $DEST"
    git -C "$SRC" ls-tree -r -z "$REF" | while IFS= read -r -d '' entry; do
      read -r mode type hash <<<"${entry%%$'\t'*}"
      path="${entry#*$'\t'}"
      [ "$type" = blob ] || continue  # submodules
      mkdir -p "$tmp/$(dirname "$path")"
      if [ "$mode" = 120000 ]; then
        ln -s "$(git -C "$SRC" cat-file blob "$hash")" "$tmp/$path"
      elif git -C "$SRC" cat-file blob "$hash" >"$tmp/$path" 2>/dev/null; then
        [ "$mode" != 100755 ] || chmod +x "$tmp/$path"
      else
        rm -f "$tmp/$path"
        log "blob missing from the source, skipped: $path"
      fi
    done
    git -C "$SRC" rev-parse "$REF" >"$tmp/.rs-ltxv-source-commit"
  fi
  mv -T "$tmp" "$DEST"
fi

# 2. The venv: its own site-packages first, then the dev venv's (a .pth that calls site.addsitedir, so the dev
#    venv's own .pth files, e.g. the editable rs_ltxv, work too).
[ -x "$VENV/bin/python" ] || "$MAIN_VENV/bin/python" -m venv "$VENV"
purelib() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
SITE="$(purelib "$VENV")"
MAIN_SITE="$(purelib "$MAIN_VENV")"
echo "import site; site.addsitedir('$MAIN_SITE')" >"$SITE/zz_rs_ltxv_dev_venv.pth"

# 3. ComfyUI's requirements, with torch pinned to the dev venv's build (pip sees it through the .pth, so nothing
#    replaces it). torchvision/torchaudio: --no-deps, since their wheels pin a torch (CUDA) build of their own.
STAMP="$VENV/.rs-ltxv-setup"
if [ ! -f "$STAMP" ] || [ "$DEST/requirements.txt" -nt "$STAMP" ] || [ "$0" -nt "$STAMP" ]; then
  TORCH="$("$MAIN_VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')"
  echo "torch==$TORCH" >"$VENV/constraints.txt"
  grep -vxE '\s*torch(vision|audio)?\s*' "$DEST/requirements.txt" >"$VENV/requirements-no-torch.txt"
  pip() {  # bounded; drops the noise about local index folders some machines' pip config names
    timeout 1200 "$VENV/bin/python" -m pip install -q --disable-pip-version-check --default-timeout 60 \
      -c "$VENV/constraints.txt" "$@" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; } >&2
  }
  log "installing torchvision==$TORCHVISION torchaudio==$TORCHAUDIO (no deps) and ComfyUI's requirements"
  pip --no-deps "torchvision==$TORCHVISION" "torchaudio==$TORCHAUDIO"
  pip -r "$VENV/requirements-no-torch.txt"
  touch "$STAMP"
fi

# 4. torchaudio: its compiled libraries are built for another torch and fail to load; moved aside, torchaudio
#    finds none and uses its pure-Python paths (what ComfyUI's LTX audio nodes need: mel spectrogram, resample).
ta_lib="$SITE/torchaudio/lib"
if compgen -G "$ta_lib/*.so" >/dev/null; then
  mkdir -p "$ta_lib/disabled" && mv "$ta_lib"/*.so "$ta_lib/disabled/"
fi

# 5. torchvision: its compiled ops (_C.so, CUDA) do not load, but importing it registers fake kernels for
#    torchvision::nms and torchvision::qnms, which fails unless those op schemas exist. A hook defines them just
#    before the first `import torchvision` (only in this venv, whose torchvision is known to lack its ops).
cat >"$SITE/rs_ltxv_torchvision_ops.py" <<'EOF'
"""Written by RS-LTXV's scripts/setup_comfyui.sh: define the op schemas torchvision's Python part needs when its
compiled ops cannot load (a CUDA torchvision beside a CPU torch). The ops themselves stay unimplemented."""
import sys


class _DefineTorchvisionOps:
    def find_spec(self, name, path=None, target=None):
        if name == "torchvision":
            sys.meta_path.remove(self)
            import torch

            schema = "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
            for op in ("nms", "qnms"):
                try:
                    torch.library.define(f"torchvision::{op}", schema)
                except RuntimeError:  # already defined
                    pass
        return None


sys.meta_path.insert(0, _DefineTorchvisionOps())
EOF
echo "import rs_ltxv_torchvision_ops" >"$SITE/rs_ltxv_torchvision_ops.pth"

# 6. Check: torch is the dev venv's, torchvision and torchaudio import.
"$VENV/bin/python" - "$MAIN_SITE" <<'EOF'
import sys
import torch, torchaudio, torchvision  # noqa: E401
assert torch.__file__.startswith(sys.argv[1]), f"torch from {torch.__file__}, not the dev venv"
print(f"[setup_comfyui] ok: torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"torchaudio {torchaudio.__version__}", file=sys.stderr)
EOF

echo "export COMFYUI_PATH=$DEST"
echo "export COMFYUI_PYTHON=$VENV/bin/python"
