"""A loopback SMTP sink for tests: stores every message it accepts as a
file in --dir. It offers no STARTTLS, so it also proves that the SMTP
transport refuses a server without it. With --reject-while FILE, while FILE
exists, recipients whose address starts with "reject" get a permanent 550.
With --down-while FILE, while FILE exists, every recipient gets a transient
451 (an outage of the relay). With --no-tls-while FILE, while FILE exists,
messages to recipients whose address starts with "notls" get "530 5.7.10
Encryption needed" after DATA, as a relay that will not send to a server
without TLS answers, unless the message says "TLS-Required: No" (RFC 8689:
the sender asks for delivery even without TLS), which such a relay honours."""

import argparse
import os
import signal
import threading
import uuid

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory, reject_while=None, down_while=None, no_tls_while=None):
        self.directory = directory
        self.no_tls_while = no_tls_while
        self.reject_while = reject_while
        self.down_while = down_while

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.down_while and os.path.exists(self.down_while):
            return "451 4.3.0 Service temporarily unavailable"
        if self.reject_while and os.path.exists(self.reject_while) and address.startswith("reject"):
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        no_tls = [a for a in envelope.rcpt_tos if a.startswith("notls")]
        if no_tls and self.no_tls_while and os.path.exists(self.no_tls_while) and not tls_optional(content):
            return "530 5.7.10 Encryption needed: TLS is required and " + no_tls[0] + " offers none"
        name = os.path.join(self.directory, f"{uuid.uuid4()}.eml")
        with open(name + ".tmp", "wb") as f:
            f.write(content)
        os.rename(name + ".tmp", name)
        return "250 2.0.0 Ok: stored"


def tls_optional(content):
    """Whether the message's header says "TLS-Required: No" (RFC 8689)."""
    head = content.split(b"\r\n\r\n", 1)[0]
    return any(line.strip().lower() == b"tls-required: no" for line in head.split(b"\r\n"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--reject-while")
    parser.add_argument("--down-while")
    parser.add_argument("--no-tls-while")
    args = parser.parse_args()
    store = Store(args.dir, args.reject_while, args.down_while, args.no_tls_while)
    controller = Controller(store, hostname="127.0.0.1", port=args.port)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
