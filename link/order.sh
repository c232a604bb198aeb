#!/usr/bin/env bash
# Regenerates link/order.txt: the functions `lazyops serve` runs while it starts and while it
# answers its first requests, then those `lazyops run help` adds. build.rs hands the file to the linker
# for release binaries (`--symbol-ordering-file`), which puts those functions side by side at
# the start of .text. Why: the kernel maps 64 KB of the executable around every page fault,
# and the ~3,000 functions a start touches were spread over most of the 20 MB of code, so an
# idle server had 14 MB of code resident; packed together they fit in a few MB.
#
# usage: link/order.sh   (needs valgrind and python3; takes about a minute)
# Rerun after dependency upgrades or large changes: a symbol that no longer exists is skipped
# by the linker, so a stale file only packs less. bench/slack.sh shows the effect (idle RSS).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/lazyops"
SECRET="order-signing-secret"
command -v valgrind >/dev/null || { echo "link/order.sh needs valgrind" >&2; exit 1; }
command -v python3 >/dev/null || { echo "link/order.sh needs python3" >&2; exit 1; }

(cd "$ROOT" && cargo build --release --quiet)

WORK="$(mktemp -d)"
VG_PID=""
cleanup() {
    if [ -n "$VG_PID" ]; then kill "$VG_PID" 2>/dev/null || true; wait "$VG_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" init "$WORK" >/dev/null
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# The Web API points at a closed port: replies that would be posted fail fast, as they may.
export SLACK_SIGNING_SECRET="$SECRET" LAZYOPS_STATE_URL="sqlite://$WORK/state.db" LAZYOPS_LOG=warn \
    LAZYOPS_SLACK_API_URL="http://127.0.0.1:9/api" SLACK_BOT_TOKEN="xoxb-order"

# Two profiles: the start alone (dumped once the server answers /healthz), then the requests.
valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file="$WORK/cg.%p" \
    "$BIN" --config "$WORK/lazyops.toml" serve --host 127.0.0.1 --port "$PORT" >/dev/null 2>"$WORK/vg.log" &
VG_PID=$!

python3 - "$PORT" "$SECRET" "$VG_PID" <<'PY'
import hashlib, hmac, json, subprocess, sys, time, urllib.parse, urllib.request
port, secret, pid = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
base = f"http://127.0.0.1:{port}"

def call(path, body=None, ctype=None, sign=True):
    headers = {}
    if body is not None:
        ts = str(int(time.time()))
        headers["Content-Type"] = ctype
        headers["X-Slack-Request-Timestamp"] = ts
        if sign:
            mac = hmac.new(secret, b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
            headers["X-Slack-Signature"] = "v0=" + mac
    req = urllib.request.Request(base + path, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
    except urllib.error.HTTPError:
        pass

for _ in range(600):
    try:
        call("/healthz")
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("server did not answer /healthz under valgrind")
time.sleep(1)
subprocess.run(["callgrind_control", "--dump=start", pid], check=True, capture_output=True)

form = lambda text: urllib.parse.urlencode({
    "token": "x", "team_id": "T1", "channel_id": "C1", "user_id": "U0123ABC", "user_name": "order",
    "command": "/lazyops", "text": text, "trigger_id": "1.2.3",
    "response_url": "http://127.0.0.1:9/response"}).encode()
urlenc = "application/x-www-form-urlencoded"
for text in ["help", "help", "deploy version payments prod", "todo list", "what version is payments on in prod"]:
    call("/slack/commands", form(text), urlenc)
call("/slack/commands", form("help"), urlenc, sign=False)
call("/slack/events", json.dumps({"type": "url_verification", "challenge": "c", "token": "t"}).encode(), "application/json")
call("/slack/events", json.dumps({
    "type": "event_callback", "event_id": "Ev1", "event_time": int(time.time()), "team_id": "T1",
    "event": {"type": "app_mention", "user": "U0123ABC", "text": "<@U111> help", "channel": "C1",
              "ts": "1610241741.000200", "event_ts": "1610241741.000200"}}).encode(), "application/json")
payload = {"type": "block_actions", "user": {"id": "U0123ABC"}, "channel": {"id": "C1"},
           "container": {"type": "message", "message_ts": "1.2", "channel_id": "C1"},
           "response_url": "http://127.0.0.1:9/response",
           "actions": [{"type": "button", "action_id": "confirm", "value": "nope", "action_ts": "1.3"}]}
call("/slack/interactions", urllib.parse.urlencode({"payload": json.dumps(payload)}).encode(), urlenc)
call("/metrics")
time.sleep(2)
PY
kill -TERM "$VG_PID"
wait "$VG_PID" || true
VG_PID=""

# Then a one-shot command from the terminal, after the server's functions.
valgrind --tool=callgrind --demangle=no --dump-instr=no --callgrind-out-file="$WORK/cli.cg" \
    "$BIN" --config "$WORK/lazyops.toml" run help >/dev/null 2>"$WORK/vg-cli.log"

python3 - "$BIN" "$ROOT/link/order.txt" "$WORK"/cg.* "$WORK/cli.cg" <<'PY'
import re, subprocess, sys
binary, out, profiles = sys.argv[1], sys.argv[2], sys.argv[3:]
profiles[:-1] = sorted(profiles[:-1], key=lambda p: not p.endswith(".1"))
# Function symbols the binary defines (callgrind also names libc functions and addresses).
nm = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
defined = {p[2] for p in (l.split() for l in nm.splitlines()) if len(p) == 3 and p[1] in "tTwW"}
order, seen = [], set()
# The server's start (its profile's name ends in `.1`), its requests, then `run help`; sorted
# within each, because callgrind's file order is not the order of execution and a sorted file
# changes only where the code did.
for path in profiles:
    names = set()
    for line in open(path, errors="replace"):
        m = re.match(r"c?fn=\(\d+\) (\S+)", line)
        if m:
            names.add(re.sub(r"'\d+$", "", m.group(1)))  # callgrind marks recursion depth with 'N
    new = sorted(n for n in names if n in defined and n not in seen)
    seen.update(new)
    order += new
with open(out, "w") as f:
    f.write("\n".join(order) + "\n")
print(f"{len(order)} functions written to {out}")
PY
