#!/usr/bin/env bash
# Runs the benchmarks, one after the other, from the repository root.
#   bench/run_all.sh                 # defaults: 2 GiB memory run, 1 GiB uploads x 5 rounds,
#                                    # 1 GiB downloads vs FileResponse and nginx,
#                                    # processing jobs: times, requests while two run
#   REPEAT=3 BENCH_TMPDIR=/mnt/disk bench/run_all.sh
# Exits non-zero if any benchmark failed (an error or wrong bytes, not a missed target).
set -uo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
repeat=${REPEAT:-5}
tmp_args=()
if [[ -n "${BENCH_TMPDIR:-}" ]]; then
    tmp_args=(--tmp-dir "$BENCH_TMPDIR")
fi

status=0
echo "== bench.memory =="
"$python" -m bench.memory "${tmp_args[@]}" || status=1
echo
echo "== bench.upload_speed --repeat $repeat =="
"$python" -m bench.upload_speed --repeat "$repeat" "${tmp_args[@]}" || status=1
echo
echo "== bench.downloads =="
"$python" -m bench.downloads "${tmp_args[@]}" || status=1
echo
echo "== bench.processing --uploads $repeat =="
"$python" -m bench.processing --uploads "$repeat" "${tmp_args[@]}" || status=1
echo
echo "== bench.s3 --repeat 3 =="
"$python" -m bench.s3 --repeat 3 "${tmp_args[@]}" || status=1
exit "$status"
