"""Parses an RFC 5322 message with Python's standard `email` package (the
parser mail tools build on) and prints what the tests check, as JSON."""

import email
import email.policy
import json
import sys


def main():
    with open(sys.argv[1], "rb") as f:
        message = email.message_from_bytes(f.read(), policy=email.policy.default)
    plain = message.get_body(preferencelist=("plain",))
    print(json.dumps({
        "header_names": [name for name, _ in message.items()],
        "list_unsubscribe": [str(v) for v in message.get_all("List-Unsubscribe", [])],
        "list_unsubscribe_post": [str(v) for v in message.get_all("List-Unsubscribe-Post", [])],
        "bcc": [str(v) for v in message.get_all("Bcc", [])],
        "to": [str(v) for v in message.get_all("To", [])],
        "defects": [type(d).__name__ for d in message.defects],
        "parts": [part.get_content_type() for part in message.walk()],
        # Headers of every MIME part, top level included: a smuggled header
        # would show up here whichever part it landed in.
        "part_header_names": [[name for name, _ in part.items()] for part in message.walk()],
        "text": plain.get_content() if plain is not None else None,
    }))


if __name__ == "__main__":
    main()
