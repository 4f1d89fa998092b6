# Sourced by scripts/run and scripts/test: make sure .venv exists and holds what pyproject.toml asks for.
# Re-installs only when pyproject.toml changed since the last install (a stamp file records its hash).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PARLOUR_PYTHON:-python3}"

ensure_venv() {
    local extras="$1" stamp want
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
    fi
    stamp="$VENV/.parlour-installed-$extras"
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        if [ "$extras" = "none" ]; then
            "$VENV/bin/python" -m pip install --quiet -e "$ROOT"
        else
            "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$extras]"
        fi
        echo "$want" > "$stamp"
    fi
}
