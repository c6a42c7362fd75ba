#!/usr/bin/env bash
# Installs (once per machine) the real API clients that tests/clients/ drives: aider in a venv of
# its own (it pins its own openai and litellm), and Claude Code, the Continue CLI and the openai
# and Anthropic npm packages under one npm prefix. The cache lives outside the work tree, so it
# survives fresh clones; a stamp keyed on the pinned versions makes a re-run a no-op.
set -euo pipefail

PY="${1:-python3}"
ROOT="${FLOCK_CACHE_DIR:-$HOME/.cache/flock}/clients"

AIDER_VERSION="0.86.2"
CLAUDE_CODE_VERSION="2.1.197"
CONTINUE_CLI_VERSION="1.5.47"
OPENAI_NPM_VERSION="6.49.0"
ANTHROPIC_SDK_NPM_VERSION="1.14.0"

NPM_PACKAGES=(
  "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"
  "@continuedev/cli@$CONTINUE_CLI_VERSION"
  "openai@$OPENAI_NPM_VERSION"
  "@anthropic-ai/sdk@$ANTHROPIC_SDK_NPM_VERSION"
)
KEY="aider-chat==$AIDER_VERSION ${NPM_PACKAGES[*]}"
STAMP="$ROOT/.installed"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$KEY" \
      && -x "$ROOT/venv/bin/aider" && -x "$ROOT/npm/node_modules/.bin/claude" ]]; then
  echo "==> API clients already installed in $ROOT"
  exit 0
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "==> installing Node.js and npm from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "clients.sh: '$tool' is not installed (apt-get install nodejs npm)" >&2; exit 1; }
done
if ! "$PY" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))'; then
  echo "clients.sh: aider-chat $AIDER_VERSION needs Python 3.10-3.12; pass one as the first argument" >&2
  exit 1
fi

mkdir -p "$ROOT"
rm -f "$STAMP"
started=$SECONDS

echo "==> installing aider-chat $AIDER_VERSION into $ROOT/venv (about a minute)"
if [[ ! -x "$ROOT/venv/bin/python" ]]; then
  "$PY" -m venv "$ROOT/venv"
fi
pip_install() {
  # Drop the per-package notes about absent local index folders that some machines' pip.conf
  # names; real warnings and errors still show.
  "$ROOT/venv/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:.*' is ignored" || true; }
}
pip_install -U pip
pip_install "aider-chat==$AIDER_VERSION"

echo "==> installing ${NPM_PACKAGES[*]} into $ROOT/npm"
mkdir -p "$ROOT/npm"
# A package.json of our own keeps npm from walking up to an unrelated one.
[[ -f "$ROOT/npm/package.json" ]] || echo '{"name": "flock-clients", "private": true}' >"$ROOT/npm/package.json"
npm install --prefix "$ROOT/npm" --no-audit --no-fund --no-update-notifier --loglevel=error \
  --save-exact "${NPM_PACKAGES[@]}"

# Claude Code's native binary is an optional dependency; npm skips a failed optional silently.
"$ROOT/npm/node_modules/.bin/claude" --version >/dev/null \
  || { echo "clients.sh: Claude Code's native binary did not install" >&2; exit 1; }
"$ROOT/venv/bin/aider" --version >/dev/null

echo "$KEY" >"$STAMP"
echo "==> API clients installed in $ROOT in $((SECONDS - started)) s"
