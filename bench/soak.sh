#!/usr/bin/env bash
# Soak test of `lazyops serve` (issue 21): mixed signed traffic for N minutes (default 10) from
# loopback: Slack slash commands (help, a demo query, todo add), Events API direct messages,
# interaction button presses and GitHub issue comments, each signed as Slack and GitHub sign
# them. Slack's Web API, the response_urls and GitHub's REST API are a small fake on loopback
# that answers at once. The server's RSS is sampled every 10 s; the report is the curve and how
# far RSS moved after warm-up (target: within 10%), then RSS 30 s after the load stops.
#
# usage: bench/soak.sh [--minutes N] [--workers W]
# Needs python3 and a release build (built here). The load is closed-loop (W workers, default
# 4, each waiting for its answer), so it adapts to the machine instead of queueing.
set -euo pipefail

MINUTES=10
WORKERS=4
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES="$2"; shift 2 ;;
        --workers) WORKERS="$2"; shift 2 ;;
        *) echo "usage: bench/soak.sh [--minutes N] [--workers W]" >&2; exit 2 ;;
    esac
done
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/lazyops"
command -v python3 >/dev/null || { echo "bench/soak.sh needs python3" >&2; exit 1; }
(cd "$ROOT" && cargo build --release --quiet)

WORK="$(mktemp -d)"
SERVER_PID=""
FAKE_PID=""
cleanup() {
    for pid in "$SERVER_PID" "$FAKE_PID"; do
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The fake Slack and GitHub: every POST is answered 200 {"ok": true, …} (201 for GitHub).
FAKE_PORT="$(free_port)"
python3 - "$FAKE_PORT" >"$WORK/fake.log" 2>&1 <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.startswith("/repos/"):
            code, body = 201, {"id": 1, "body": "ok"}
        else:
            code, body = 200, {"ok": True, "channel": "C1", "ts": "1700000000.000100", "user_id": "UBOT", "bot_id": "BBOT"}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
FAKE_PID=$!

"$BIN" init "$WORK/ws" >/dev/null
# The demo's on-call team takes the soak's Slack user and every trusted GitHub author.
sed -i 's/"slack:U0123ABC", "github:octocat"/"slack:U0123ABC", "github:octocat", "github:*"/' "$WORK/ws/lazyops.toml"
PORT="$(free_port)"
export SLACK_SIGNING_SECRET="soak-slack-secret" SLACK_BOT_TOKEN="xoxb-soak" \
    GITHUB_WEBHOOK_SECRET="soak-github-secret" GITHUB_TOKEN="ghp_soak" \
    LAZYOPS_SLACK_API_URL="http://127.0.0.1:$FAKE_PORT/api" LAZYOPS_GITHUB_API_URL="http://127.0.0.1:$FAKE_PORT" \
    LAZYOPS_STATE_URL="sqlite://$WORK/state.db" LAZYOPS_LOG=warn
"$BIN" --config "$WORK/ws/lazyops.toml" serve --host 127.0.0.1 --port "$PORT" >/dev/null 2>"$WORK/server.log" &
SERVER_PID=$!

python3 - "$PORT" "$FAKE_PORT" "$SERVER_PID" "$MINUTES" "$WORKERS" "$WORK/state.db" <<'PY'
import datetime, hashlib, hmac, http.client, json, sqlite3, sys, threading, time, urllib.parse, uuid

port, fake_port, pid, minutes, workers, state = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                                 float(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
SLACK, GITHUB = b"soak-slack-secret", b"soak-github-secret"
respond = f"http://127.0.0.1:{fake_port}/respond/1"

def rss_mb():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

def slack_headers(body, content_type):
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SLACK, b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"content-type": content_type, "x-slack-request-timestamp": ts, "x-slack-signature": sig}

def slash(text):
    body = urllib.parse.urlencode({"token": "x", "team_id": "T1", "channel_id": "C1", "user_id": "U0123ABC",
                                   "command": "/lazyops", "text": text, "response_url": respond,
                                   "trigger_id": "1.2.3"}).encode()
    return "/slack/commands", body, slack_headers(body, "application/x-www-form-urlencoded")

def event(text):
    body = json.dumps({"type": "event_callback", "team_id": "T1", "event_id": "Ev" + uuid.uuid4().hex,
                       "event": {"type": "message", "channel_type": "im", "user": "U0123ABC", "text": text,
                                 "channel": "D1", "ts": f"{time.time():.6f}"}}).encode()
    return "/slack/events", body, slack_headers(body, "application/json")

def press():
    payload = {"type": "block_actions", "user": {"id": "U0123ABC"}, "channel": {"id": "C1"},
               "container": {"type": "message", "channel_id": "C1", "message_ts": "1.2", "is_ephemeral": True},
               "response_url": respond,
               "actions": [{"action_id": "lazyops_cancel", "value": uuid.uuid4().hex[:12]}]}
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return "/slack/interactions", body, slack_headers(body, "application/x-www-form-urlencoded")

comment_ids = iter(range(10**9, 2 * 10**9))
def comment(text):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    user = {"login": "soaker", "id": 7, "type": "User"}
    body = json.dumps({"action": "created",
                       "issue": {"number": 1, "title": "soak", "user": user, "state": "open", "locked": False},
                       "comment": {"id": next(comment_ids), "body": text, "user": user, "created_at": now,
                                   "updated_at": now, "author_association": "MEMBER"},
                       "repository": {"full_name": "soak/soak", "name": "soak", "owner": {"login": "soak"}},
                       "sender": user}).encode()
    sig = "sha256=" + hmac.new(GITHUB, body, hashlib.sha256).hexdigest()
    return "/github/webhook", body, {"content-type": "application/json", "x-github-event": "issue_comment",
                                     "x-github-delivery": str(uuid.uuid4()), "x-hub-signature-256": sig}

MIX = [lambda i: slash("help"), lambda i: slash(f"db query user-by-id {i % 60 + 1}"),
       lambda i: slash(f'todo add "soak {i}"'), lambda i: event("help"), lambda i: event("whoami"),
       lambda i: press(), lambda i: comment("/lazyops help")]

stop = threading.Event()
lock = threading.Lock()
counts = {"sent": 0, "2xx": 0, "other": 0, "errors": 0}

def worker(w):
    conn, i = None, w
    while not stop.is_set():
        path, body, headers = MIX[i % len(MIX)](i)
        i += workers
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", path, body, headers)
            resp = conn.getresponse()
            resp.read()
            key = "2xx" if 200 <= resp.status < 300 else "other"
        except Exception:
            conn, key = None, "errors"
        with lock:
            counts["sent"] += 1
            counts[key] += 1

for _ in range(200):
    try:
        http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/healthz")
        break
    except OSError:
        time.sleep(0.05)
time.sleep(0.5)
idle = rss_mb()
print(f"soak: {minutes:g} min of mixed signed traffic, {workers} workers; idle RSS {idle:.1f} MB", flush=True)
print(f"{'t (s)':>6} {'RSS (MB)':>9} {'requests':>9} {'req/s':>7} {'non-2xx':>8}", flush=True)
threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(workers)]
start = time.time()
for t in threads:
    t.start()
samples, last = [], 0
end = start + minutes * 60
while time.time() < end:
    time.sleep(min(10, max(0.0, end - time.time())))
    t, rss = time.time() - start, rss_mb()
    with lock:
        sent, bad = counts["sent"], counts["other"] + counts["errors"]
    samples.append((t, rss))
    print(f"{t:6.0f} {rss:9.1f} {sent:9d} {(sent - last) / 10:7.0f} {bad:8d}", flush=True)
    last = sent
stop.set()
for t in threads:
    t.join(timeout=35)
time.sleep(30)
after = rss_mb()
# Warm-up: the first fifth of the run (at least the first sample).
warm = samples[max(1, len(samples) // 5) - 1][1] if samples else idle
later = [r for t, r in samples[max(1, len(samples) // 5):]] or [warm]
peak = max(later)
growth = (peak - warm) / warm * 100
rows = sqlite3.connect(state).execute("select count(*) from audit").fetchone()[0]
print()
print(f"requests {counts['sent']} (2xx {counts['2xx']}, other {counts['other']}, errors {counts['errors']}); "
      f"audit rows {rows}")
print(f"RSS idle {idle:.1f} MB; after warm-up {warm:.1f} MB; peak after that {peak:.1f} MB "
      f"({growth:+.1f}%, target within 10%); 30 s after the load {after:.1f} MB")
PY
