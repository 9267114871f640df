#!/usr/bin/env bash
# Download the wheels that the GPU machine's image lacks into .gpu-wheels/ (ignored by git), so that
# benchmarks/gpu_check.py runs there from the source tree. That machine reaches no package index: its
# python3 (3.12, x86-64; torch and torchvision already installed) installs these offline, with the
# command that docs/PERFORMANCE.md ("GPU check") gives.
#
#   benchmarks/gpu_prepare.sh [--dry-run] [PYTHON_VERSION]   # default 3.12, the GPU image's Python
#
# --dry-run prints the requirements and the pip commands, and downloads and writes nothing (the tests
# run it: tests/test_gpu_check.py checks that the list covers what gpu_check.py imports).
#
# Every package is pure Python except pydantic-core and psutil (the engine reads a process's start time
# with it), fetched as manylinux wheels for PYTHON_VERSION. The versions are those of the development environment the tests pass in; the set is
# closed (every dependency of every package is in it), so `pip install --no-index` needs nothing else.
# Running it again with another PYTHON_VERSION adds that Python's pydantic-core beside the first:
# pip picks the one that fits.
set -euo pipefail

dry_run=false
if [[ "${1:-}" == "--dry-run" ]]; then
    dry_run=true
    shift
fi
python_version="${1:-3.12}"
here="$(cd "$(dirname "$0")/.." && pwd)"
wheels="$here/.gpu-wheels"

# name==version, one a line: the project's dependencies (pyproject.toml) beyond torch, torchvision,
# scikit-learn and matplotlib (the image has those), and everything they need.
requirements=$(cat <<'EOF'
pydantic==2.14.4
pydantic-core==2.50.5
psutil==7.2.2
annotated-types==0.8.0
typing-inspection==0.4.5
typing-extensions==4.16.0
tinydb==4.9.0
platformdirs==4.14.8
filelock==4.3.1
textual==8.2.8
textual-plotext==1.0.1
plotext==5.3.2
typer==0.29.2
annotated-doc==0.0.7
shellingham==1.5.4
rich==15.0.0
pygments==2.21.0
markdown-it-py==4.3.0
mdurl==0.1.2
mdit-py-plugins==0.7.0
linkify-it-py==2.2.0
EOF
)

binary_only='^(pydantic-core|psutil)=='
pure=$(grep -vE "$binary_only" <<<"$requirements")
core=$(grep -E "$binary_only" <<<"$requirements")
pip=(python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheels")
binary=(--python-version "$python_version" --implementation cp
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
if $dry_run; then
    echo "# $wheels/requirements.txt"
    echo "$requirements"
    # shellcheck disable=SC2086  # one argument per requirement line
    echo "#" "${pip[@]}" $pure
    # shellcheck disable=SC2086
    echo "#" "${pip[@]}" "${binary[@]}" $core
    exit 0
fi
mkdir -p "$wheels"
echo "$requirements" >"$wheels/requirements.txt"
# shellcheck disable=SC2086  # one argument per requirement line
"${pip[@]}" $pure
# shellcheck disable=SC2086
"${pip[@]}" "${binary[@]}" $core

count=$(find "$wheels" -name '*.whl' | wc -l)
size=$(du -sh "$wheels" | cut -f1)
echo "$count wheels, $size in $wheels"
