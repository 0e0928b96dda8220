#!/usr/bin/env bash
# Runs a command with a moto server (the AWS wire protocol, locally) on a
# free loopback port, and stops the server afterwards whatever happens.
set -euo pipefail
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOG="${MOTO_LOG:-$(mktemp -t moto.XXXXXX.log)}"
# moto's server, with DynamoDB conditional writes made atomic as in AWS
# (tests/support/moto_server.py says why).
"$PY" "$(dirname "$0")/../tests/support/moto_server.py" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true' EXIT
"$PY" - "$PORT" <<'PYEOF'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/"
for _ in range(300):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("moto did not start")
PYEOF
echo "moto server on 127.0.0.1:$PORT (log: $LOG)"
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
"$@"
