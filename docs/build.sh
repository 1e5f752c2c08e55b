#!/usr/bin/env bash
# Build the HTML documentation with warnings (and unresolved references) as errors.
#
#   bash docs/build.sh            # -> docs/_build/html/index.html
#   bash docs/build.sh -E         # extra arguments go to sphinx-build (-E: full rebuild)
#
# Needs the docs extra: pip install ".[docs]". No network access is needed:
# intersphinx reads the local inventories in docs/_inventories/.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf docs/api/generated
exec python -m sphinx -W -n --keep-going -b html -j auto "$@" docs docs/_build/html
