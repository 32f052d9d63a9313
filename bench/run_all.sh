#!/usr/bin/env bash
# Runs the benchmarks, one after the other, from the repository root.
#   bench/run_all.sh                 # defaults: 2 GiB memory run, 1 GiB uploads x 5 rounds,
#                                    # 1 GiB downloads vs FileResponse and nginx,
#                                    # processing jobs: times, requests while two run,
#                                    # S3 storage, 1,000 and 1,100 idle connections
#   REPEAT=3 BENCH_TMPDIR=/mnt/disk bench/run_all.sh
#   BASELINE=HEAD~1 bench/run_all.sh # uploads, downloads and idle connections beside that
#                                    # revision (git worktree), in the same runs
# Exits non-zero if any benchmark failed (an error or wrong bytes, not a missed target).
set -uo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
repeat=${REPEAT:-5}
tmp_args=()
if [[ -n "${BENCH_TMPDIR:-}" ]]; then
    tmp_args=(--tmp-dir "$BENCH_TMPDIR")
fi
baseline_args=()
if [[ -n "${BASELINE:-}" ]]; then
    baseline_args=(--baseline "$BASELINE")
fi

status=0
echo "== bench.memory =="
"$python" -m bench.memory "${tmp_args[@]}" || status=1
echo
echo "== bench.upload_speed --repeat $repeat =="
"$python" -m bench.upload_speed --repeat "$repeat" "${tmp_args[@]}" "${baseline_args[@]}" \
    || status=1
echo
echo "== bench.downloads =="
"$python" -m bench.downloads "${tmp_args[@]}" "${baseline_args[@]}" || status=1
echo
echo "== bench.processing --uploads $repeat =="
"$python" -m bench.processing --uploads "$repeat" "${tmp_args[@]}" || status=1
echo
echo "== bench.s3 --repeat 3 =="
"$python" -m bench.s3 --repeat 3 "${tmp_args[@]}" || status=1
echo
echo "== bench.idle_connections --connections 1000 1100 =="
"$python" -m bench.idle_connections --connections 1000 1100 "${tmp_args[@]}" "${baseline_args[@]}" \
    || status=1
exit "$status"
