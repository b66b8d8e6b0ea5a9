#!/usr/bin/env bash
# Load test: the scopegate sidecar against a no-op ext_authz server (examples/noop_authz.rs),
# both driven by h2load with the same gRPC Check (alice executing deploy_prod: an allow).
# Loopback only; bounded by a request count and `timeout 120` per run; both servers are
# killed on exit.
#
#   deploy/loadtest/run.sh            # N=200000 C=16 M=32 T=2 override via the environment
#
# h2load checks only the HTTP status (gRPC answers 200 and puts grpc-status in trailers), so the
# script first sends the same body once with curl and checks that the sidecar's answer is an allow
# (the CheckResponse carries "USER:alice" and no "NG_ACCESS_DENIED"), before and after the load.
#
# ghz.json + checks.json are the equivalent ghz setup (mixed allows and denials), and README.md
# beside this script has the ghz (server reflection or `scopegate protoset`), h2load and oha recipes.
set -euo pipefail

N=${N:-200000}
C=${C:-16}
M=${M:-32}
T=${T:-2}
SIDECAR_ADDR=127.0.0.1:19191
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

echo "== building release binaries" >&2
(cd "$root" && cargo build --release --bin scopegate --example noop_authz)
bin="$root/target/release/scopegate"
noop="$root/target/release/examples/noop_authz"

# the audit log stays on (the default configuration is what is measured) but goes to a file
RUST_LOG=warn "$bin" serve --listen "$SIDECAR_ADDR" >"$work/audit.jsonl" &
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
wait_port "$NOOP_ADDR"

"$noop" --dump-request >"$work/req.bin"

# One Check via curl; prints the raw (gRPC-framed) CheckResponse.
one_check() {
    curl -sS --http2-prior-knowledge --max-time 5 \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        --data-binary @"$work/req.bin" "http://$1$PATH_CHECK"
}
sanity() {
    local body
    body=$(one_check "$SIDECAR_ADDR" | tr -c '[:print:]' '.')
    if [[ $body == *USER:alice* && $body != *NG_ACCESS_DENIED* ]]; then
        echo "sanity ($1): the sidecar allows the load-test request" >&2
    else
        echo "sanity ($1): the sidecar did NOT allow the load-test request: $body" >&2
        exit 1
    fi
}
sanity before

load() {
    local name=$1 addr=$2 out="$work/$1.txt"
    echo "== h2load -> $name ($addr): n=$N c=$C m=$M t=$T" >&2
    timeout 120 h2load -n "$N" -c "$C" -m "$M" -t "$T" \
        --header 'content-type: application/grpc' --header 'te: trailers' \
        -d "$work/req.bin" "http://$addr$PATH_CHECK" >"$out"
    grep -E '^(finished in|requests:|status codes:|time for request:|time to 1st byte:)' "$out" -A1 \
        | grep -v '^--' >&2
}
load sidecar "$SIDECAR_ADDR"
load noop "$NOOP_ADDR"
sanity after

rps() { sed -nE 's/^finished in [^,]+, ([0-9.]+) req\/s.*/\1/p' "$work/$1.txt"; }
latency() {
    # time for request:  min  max  mean  sd  +/- sd
    awk '/^time for request:/ { printf "min %s max %s mean %s sd %s", $4, $5, $6, $7 }' "$work/$1.txt"
}
ok2xx() { sed -nE 's/^status codes: ([0-9]+) 2xx.*/\1/p' "$work/$1.txt"; }
s=$(rps sidecar)
n=$(rps noop)
echo
printf '%-8s %12s req/s  2xx %-8s  latency %s\n' sidecar "$s" "$(ok2xx sidecar)" "$(latency sidecar)"
printf '%-8s %12s req/s  2xx %-8s  latency %s\n' noop "$n" "$(ok2xx noop)" "$(latency noop)"
awk -v s="$s" -v n="$n" 'BEGIN { printf "sidecar / noop throughput: %.1f%% (target >= 80%%)\n", 100 * s / n }'
echo "(h2load reports no percentiles: latency is min/max/mean/sd per request)"
