#!/usr/bin/env bash
# Instructions per message of the Python package's actor paths, from
# valgrind's callgrind: repeatable where wall time on a shared VM is not.
#
#   bash scripts/python-callgrind.sh                 # the venv's installed package
#   WHEEL_DIR=/tmp/wheel-a bash scripts/python-callgrind.sh   # a wheel unpacked by
#                                                    # `pip install --target /tmp/wheel-a`
#
# Runs the bench's own `_stream` (N1 and N2 messages, each after 2,000 of
# warm-up) and `_roundtrip` (R1 and R2 samples) under callgrind and prints
# (Ir(N2) - Ir(N1)) / (N2 - N1) for each, so start-up and shutdown cancel
# out. quanta's clock calibration runs for a fixed wall time, so its
# instruction count varies from run to run: its inclusive count is taken
# out. numpy's BLAS threads spin when idle: OPENBLAS_NUM_THREADS=1.
# Profiles stay in $OUT (default target/python-callgrind) for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-target/python-venv/bin/python}
OUT=${OUT:-target/python-callgrind}
N1=${N1:-1000} N2=${N2:-6000} R1=${R1:-1000} R2=${R2:-3000}
mkdir -p "$OUT"
export OPENBLAS_NUM_THREADS=1 PYTHONHASHSEED=0 PYTHONPATH=${WHEEL_DIR:-}

stream='import asyncio, sys
import dotcompute
from dotcompute.bench.__main__ import _stream
asyncio.run(_stream(dotcompute, 2000))
asyncio.run(_stream(dotcompute, int(sys.argv[1])))'
roundtrip='import asyncio, sys
import dotcompute
from dotcompute.bench.__main__ import _roundtrip
asyncio.run(_roundtrip(dotcompute, int(sys.argv[1])))'

# Ir of one profile, less quanta's calibration.
ir() {
  local total calib
  total=$(grep -m1 '^summary:' "$1" | awk '{print $2}')
  calib=$(callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$1" 2>/dev/null |
    grep -m1 'quanta::Clock::new \[' | awk '{gsub(",", "", $1); print $1}')
  echo $((total - ${calib:-0}))
}

run() { # name code n
  local file="$OUT/$1.$3.out"
  valgrind --tool=callgrind --callgrind-out-file="$file" "$PY" -c "$2" "$3" >/dev/null 2>"$OUT/$1.$3.log"
  ir "$file"
}

s1=$(run stream "$stream" "$N1")
s2=$(run stream "$stream" "$N2")
r1=$(run roundtrip "$roundtrip" "$R1")
r2=$(run roundtrip "$roundtrip" "$R2")
echo "stream through a Python actor: $(((s2 - s1) / (N2 - N1))) instructions per message"
echo "round trip:                    $(((r2 - r1) / (R2 - R1))) instructions per message"
echo "profiles: $OUT/{stream,roundtrip}.*.out"
