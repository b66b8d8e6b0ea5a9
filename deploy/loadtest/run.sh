#!/usr/bin/env bash
# Load test: the scopegate sidecar against a no-op ext_authz server (examples/noop_authz.rs), in
# the same run, both driven by h2load with the same gRPC Check (alice executing deploy_prod: an
# allow). Loopback only; every h2load run is bounded by a request count or a duration and by
# `timeout`; every server is killed on exit.
#
#   deploy/loadtest/run.sh        # N=200000 ROUNDS=3 C=16 M=32 T=2 RATES="10000 50000" RATE_SECS=5
#   PROFILE=ci deploy/loadtest/run.sh     # the `ci` profile's binaries (no LTO; quicker to build)
#
# Three servers:
#   sidecar        `scopegate serve` in its default configuration: the audit log on, to standard
#                  output, which goes to a file (as an operator's log collector would take it)
#   sidecar-noaudit  the same with `--audit off`
#   noop           a tonic ext_authz server that answers OK without looking
#
# Throughput: h2load with N requests over C connections x M streams, in ROUNDS rounds of no-op,
# sidecar, sidecar-noaudit; each ratio is to its round's no-op run, and the median is reported.
# Latency: each server at fixed rates (h2load --rps, per connection), percentiles p50/p99/p99.9
# computed from h2load's per-request log (--log-file).
#
# h2load checks only the HTTP status (gRPC answers 200 and puts grpc-status in trailers), so the
# script first sends the same body once with curl and checks that the sidecar's answer is an allow
# (the CheckResponse carries "USER:alice" and no "NG_ACCESS_DENIED"), before and after the load.
#
# ghz.json + checks.json are the equivalent ghz setup (mixed allows and denials), and README.md
# beside this script has the ghz (server reflection or `scopegate protoset`), h2load and oha recipes.
set -euo pipefail

N=${N:-200000}
ROUNDS=${ROUNDS:-3}
C=${C:-16}
M=${M:-32}
T=${T:-2}
RATES=${RATES-10000 50000}
RATE_SECS=${RATE_SECS:-5}
PROFILE=${PROFILE:-release}
SIDECAR_ADDR=127.0.0.1:19191
NOAUDIT_ADDR=127.0.0.1:19193
NOOP_ADDR=127.0.0.1:19292
PATH_CHECK=/envoy.service.auth.v3.Authorization/Check

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

if ! command -v h2load >/dev/null; then
    echo "h2load not found: installing nghttp2-client" >&2
    apt-get update && apt-get install -y nghttp2-client
fi

dir=$PROFILE
[[ $PROFILE == dev ]] && dir=debug
# SCOPEGATE_BIN / NOOP_BIN: measure those binaries (e.g. copies built with other allocator
# features) instead of building; CARGO_FLAGS: e.g. `--no-default-features` (the system allocator)
# or `--no-default-features --features jemalloc`
bin=${SCOPEGATE_BIN:-"$root/target/$dir/scopegate"}
noop=${NOOP_BIN:-"$root/target/$dir/examples/noop_authz"}
if [[ -z ${SCOPEGATE_BIN:-} || -z ${NOOP_BIN:-} ]]; then
    echo "== building $PROFILE binaries" >&2
    # shellcheck disable=SC2086
    (cd "$root" && cargo build --profile "$PROFILE" ${CARGO_FLAGS:-} --bin scopegate --example noop_authz)
fi

# the default configuration; the audit log (on, to stdout) goes to a file
RUST_LOG=warn "$bin" serve --listen "$SIDECAR_ADDR" >"$work/audit.jsonl" &
pids+=($!)
RUST_LOG=warn "$bin" serve --listen "$NOAUDIT_ADDR" --audit off >/dev/null &
pids+=($!)
"$noop" --listen "$NOOP_ADDR" 2>/dev/null &
pids+=($!)

wait_port() {
    local host=${1%:*} port=${1##*:}
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listening on $1" >&2
    return 1
}
wait_port "$SIDECAR_ADDR"
wait_port "$NOAUDIT_ADDR"
wait_port "$NOOP_ADDR"

"$noop" --dump-request >"$work/req.bin"

# One Check via curl; prints the raw (gRPC-framed) CheckResponse.
one_check() {
    curl -sS --http2-prior-knowledge --max-time 5 \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        --data-binary @"$work/req.bin" "http://$1$PATH_CHECK"
}
sanity() {
    local body addr
    for addr in "$SIDECAR_ADDR" "$NOAUDIT_ADDR"; do
        body=$(one_check "$addr" | tr -c '[:print:]' '.')
        if [[ $body == *USER:alice* && $body != *NG_ACCESS_DENIED* ]]; then
            echo "sanity ($1, $addr): the sidecar allows the load-test request" >&2
        else
            echo "sanity ($1, $addr): the sidecar did NOT allow the load-test request: $body" >&2
            exit 1
        fi
    done
}
sanity before

h2=(h2load --header 'content-type: application/grpc' --header 'te: trailers' -d "$work/req.bin")

# throughput: N requests as fast as they go
load() {
    local name=$1 addr=$2 out="$work/$1.txt"
    echo "== h2load -> $name ($addr): n=$N c=$C m=$M t=$T" >&2
    timeout 180 "${h2[@]}" -n "$N" -c "$C" -m "$M" -t "$T" "http://$addr$PATH_CHECK" >"$out"
    grep -E '^(finished in|status codes:)' "$out" >&2
}
# rounds of (noop, sidecar, sidecar-noaudit): each ratio is to the no-op run of its own round, so a
# drift of the shared machine between rounds does not show as a ratio
for round in $(seq "$ROUNDS"); do
    load "noop-$round" "$NOOP_ADDR"
    load "sidecar-$round" "$SIDECAR_ADDR"
    load "sidecar-noaudit-$round" "$NOAUDIT_ADDR"
done

# latency: a fixed rate (RATE req/s in all, RATE/C per connection) for RATE_SECS seconds
percentiles() {
    # h2load's log: start time (us), status, duration (us); prints "p50 p99 p99.9 (ms) n"
    sort -n -k3,3 "$1" | awk '{ d[NR] = $3 } END {
        if (NR == 0) { print "- - - 0"; exit }
        i50 = int(NR * 0.50); i99 = int(NR * 0.99); i999 = int(NR * 0.999);
        if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1; if (i999 < 1) i999 = 1;
        printf "%.2f %.2f %.2f %d\n", d[i50] / 1000, d[i99] / 1000, d[i999] / 1000, NR }'
}
declare -A latency
for rate in $RATES; do
    per_client=$(((rate + C - 1) / C))
    n=$((rate * RATE_SECS))
    for server in noop:"$NOOP_ADDR" sidecar:"$SIDECAR_ADDR" sidecar-noaudit:"$NOAUDIT_ADDR"; do
        name=${server%%:*} addr=${server#*:}
        log="$work/$name-$rate.log"
        echo "== h2load -> $name at $rate req/s for ${RATE_SECS}s" >&2
        timeout $((RATE_SECS * 4 + 60)) "${h2[@]}" -n "$n" -c "$C" -m "$M" -t "$T" --rps "$per_client" \
            --log-file "$log" "http://$addr$PATH_CHECK" >"$work/$name-$rate.txt"
        latency[$name-$rate]=$(percentiles "$log")
    done
done
sanity after

rps() { sed -nE 's/^finished in [^,]+, ([0-9.]+) req\/s.*/\1/p' "$work/$1.txt"; }
ok2xx() { sed -nE 's/^status codes: ([0-9]+) 2xx.*/\1/p' "$work/$1.txt"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "throughput (n=$N per run, $C connections x $M streams, $ROUNDS rounds)"
for round in $(seq "$ROUNDS"); do
    n=$(rps "noop-$round")
    for name in noop sidecar sidecar-noaudit; do
        s=$(rps "$name-$round")
        awk -v name="$name" -v r="$round" -v s="$s" -v n="$n" -v ok="$(ok2xx "$name-$round")" \
            'BEGIN { printf "  round %d %-16s %12s req/s  2xx %-8s ratio %.2fx\n", r, name, s, ok, s / n }'
        awk -v s="$s" -v n="$n" 'BEGIN { printf "%.4f\n", s / n }' >>"$work/ratio-$name"
    done
done
for name in sidecar sidecar-noaudit; do
    printf '  median ratio to noop, %-16s %.2fx\n' "$name" "$(median <"$work/ratio-$name")"
done
echo "  (targets: sidecar >= 0.90x, sidecar-noaudit >= 0.95x)"
echo
echo "latency at fixed rates (ms; from h2load's per-request log)"
printf '  %-16s %8s %8s %8s %8s %9s\n' server rate p50 p99 p99.9 requests
for rate in $RATES; do
    for name in noop sidecar sidecar-noaudit; do
        read -r p50 p99 p999 count <<<"${latency[$name-$rate]}"
        printf '  %-16s %8s %8s %8s %8s %9s\n' "$name" "$rate" "$p50" "$p99" "$p999" "$count"
    done
done
audit_lines=$(wc -l <"$work/audit.jsonl")
echo
echo "audit lines written by the default sidecar: $audit_lines"
