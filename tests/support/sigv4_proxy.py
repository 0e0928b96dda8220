"""A stand-in for API Gateway's AWS_IAM authorizer in front of the embedded stack.

Every request must carry an AWS Signature Version 4 for `execute-api` that
botocore (AWS's own Python signer, not Carepost's code) computes identically
from the known secret key: the same canonical request over exactly the
headers the client signed, its body, and the client's X-Amz-Date (within five
minutes). A request that does not match is refused with 403 and the message
API Gateway gives; a valid one is forwarded with the stack's admin token.

Usage: sigv4_proxy.py UPSTREAM ADMIN_TOKEN ACCESS_KEY SECRET_KEY REGION
Prints "listening on http://127.0.0.1:PORT" once ready; logs one line per
request to stderr (method, path, verdict).
"""

import datetime
import hmac
import http.server
import json
import sys
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

UPSTREAM, ADMIN_TOKEN, ACCESS_KEY, SECRET_KEY, REGION = sys.argv[1:6]
SERVICE = "execute-api"
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def parse_authorization(value):
    """Splits 'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...'."""
    algorithm, _, rest = value.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        return None
    fields = {}
    for part in rest.split(","):
        key, _, val = part.strip().partition("=")
        fields[key] = val
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields


def verdict(method, path, headers, body):
    """None when the signature matches, else the reason to refuse."""
    auth = headers.get("Authorization")
    if auth is None:
        return "Missing Authentication Token"
    fields = parse_authorization(auth)
    if fields is None:
        return "Authorization header requires 'AWS4-HMAC-SHA256' signatures"
    key_id, date, region, service, terminal = (fields["Credential"].split("/") + [""] * 5)[:5]
    if key_id != ACCESS_KEY:
        return "The security token included in the request is invalid."
    if (region, service, terminal) != (REGION, SERVICE, "aws4_request"):
        return "Credential should be scoped to a valid region and service"
    amz_date = headers.get("X-Amz-Date", "")
    try:
        at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "Missing or malformed X-Amz-Date"
    if abs((datetime.datetime.now(datetime.timezone.utc) - at).total_seconds()) > 300 or not amz_date.startswith(date):
        return "Signature expired"
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed:
        return "'Host' must be a signed header"
    request = AWSRequest(method=method, url=f"http://{headers.get('Host')}{path}", data=body)
    for name in signed:
        value = headers.get(name)
        if value is None:
            return f"signed header '{name}' is missing"
        request.headers[name] = value
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY, headers.get("X-Amz-Security-Token")), SERVICE, REGION)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        return MISMATCH
    return None


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        refused = verdict(self.command, self.path, self.headers, body)
        sys.stderr.write(f"{self.command} {self.path.split('?')[0]} {'refused: ' + refused if refused else 'ok'}\n")
        if refused:
            return self.answer(403, {"Content-Type": "application/json"}, json.dumps({"message": refused}).encode())
        forward = urllib.request.Request(UPSTREAM + self.path, data=body or None, method=self.command)
        forward.add_header("Authorization", f"Bearer {ADMIN_TOKEN}")
        if self.headers.get("Content-Type"):
            forward.add_header("Content-Type", self.headers["Content-Type"])
        try:
            with urllib.request.urlopen(forward, timeout=60) as response:
                self.answer(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            self.answer(error.code, error.headers, error.read())

    def answer(self, status, headers, body):
        self.send_response(status)
        self.send_header("Content-Type", headers.get("Content-Type", "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
