#!/usr/bin/env bash
# Login latency and its argon2 share, plus the server's idle memory, in one run.
#   bench/login.sh [N]      (N sequential logins, default 200)
# Starts the release binary on a free loopback port with its own data dir, measures,
# and stops it. The argon2id cost comes from the crypto benchmark in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}
cargo build --release --quiet
bin=target/release/stepgate
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
printf 'data_dir = "%s"\nlisten = "127.0.0.1:0"\nlog_filter = "warn,stepgate_server::http=info"\n[rate_limits]\nlogin_per_minute = 1000000\n' "$dir" > "$dir/c.toml"
key=$(STEPGATE_CONFIG="$dir/c.toml" "$bin" api-keys create --scope service 2>/dev/null | tail -n1)
STEPGATE_CONFIG="$dir/c.toml" "$bin" serve > "$dir/log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$dir/log" && break; sleep 0.1; done
addr=$(grep -o 'listening on http://[0-9.:]*' "$dir/log" | sed 's|listening on http://||')
sleep 2
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

python3 - "$addr" "$key" "$n" <<'PY'
import http.client, json, statistics, sys, time
addr, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = addr.rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port))
def post(path, body, auth=None):
    h = {"Content-Type": "application/json"}
    if auth: h["Authorization"] = "Bearer " + auth
    c.request("POST", path, json.dumps(body).encode(), h)  # bytes: one send, no Nagle stall
    r = c.getresponse(); r.read(); return r.status
assert post("/v1/users", {"username": "bench", "password": "correct horse battery"}, key) == 201
lat = []
for _ in range(n):
    t = time.perf_counter()
    assert post("/v1/sessions", {"username": "bench", "password": "correct horse battery"}) == 201
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print(f"login latency over {n}: p50 {statistics.median(lat):.1f} ms, p90 {lat[int(n*0.9)]:.1f} ms")
open("/tmp/stepgate-login-p50", "w").write(str(statistics.median(lat)))
PY
kill "$pid"
argon=$(cargo bench --quiet -p stepgate-server --bench crypto 2>/dev/null | awk '/argon2id verify:/ {print $3}')
p50=$(cat /tmp/stepgate-login-p50)
python3 -c "print(f'argon2id verify {float($argon):.1f} ms = {100*float($argon)/float($p50):.0f}% of the login p50')"
