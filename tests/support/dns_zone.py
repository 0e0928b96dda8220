"""A DNS server for tests: answers TXT queries from the records given on
the command line (NAME=TEXT, repeatable), NXDOMAIN for any other name.
Prints "listening on IP:PORT" once it serves (UDP and TCP, the same port).

    python dns_zone.py "_dmarc.clinic.example=v=DMARC1; p=quarantine"
"""

import socket
import sys
import time

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSServer


class ZoneResolver(BaseResolver):
    def __init__(self, records):
        self.records = records

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        texts = self.records.get(name)
        if texts is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for text in texts:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(text), ttl=60))
        return reply


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(resolver):
    """Serves UDP and TCP on one port. A port free for UDP may be taken for
    TCP by another test's server meanwhile: then another port is tried."""
    for _ in range(50):
        port = free_port()
        udp = DNSServer(resolver, address="127.0.0.1", port=port, logger=QuietLogger())
        try:
            tcp = DNSServer(resolver, address="127.0.0.1", port=port, tcp=True, logger=QuietLogger())
        except OSError:
            udp.server.server_close()
            continue
        udp.start_thread()
        tcp.start_thread()
        return port
    raise SystemExit("no port free for both UDP and TCP")


def main():
    records = {}
    for arg in sys.argv[1:]:
        name, _, text = arg.partition("=")
        records.setdefault(name.rstrip(".").lower(), []).append(text)
    port = serve(ZoneResolver(records))
    print(f"listening on 127.0.0.1:{port}", flush=True)
    while True:
        time.sleep(3600)


class QuietLogger:
    def __getattr__(self, _name):
        return lambda *args, **kwargs: None


if __name__ == "__main__":
    main()
