"""Runs moto's server as `moto_server` does, except that DynamoDB requests
are handled one at a time.

moto evaluates a DynamoDB condition and applies the write as separate steps
on its request threads, so two racing conditional updates can both pass
(`attempt = 1`) and both win. Real DynamoDB applies a conditional write
atomically, and the ledger's exactly-once claims rely on that; serializing
DynamoDB requests restores it. Other services (SQS long polls) stay
concurrent.

One answer is also corrected: moto 5.2's SES v2 GetConfigurationSet puts
the stored SendingOptions object where the boolean SendingEnabled belongs
(`{"SendingEnabled": {}}`), and its GetEmailIdentity gives DKIM's
LastKeyGenerationTimestamp as ISO text where the JSON protocol has epoch
seconds; neither can be read by an SDK. The patches answer as SES does."""

import argparse
import os
import threading

from werkzeug.serving import run_simple
from datetime import datetime

from moto.ses.models import ConfigurationSet, EmailIdentity
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


class AtomicDynamoDb:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.lock:
                # The whole response is produced inside the lock.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def sending_enabled_as_a_boolean():
    original = ConfigurationSet.to_dict_v2

    def to_dict_v2(self):
        answer = original(self)
        options = self.enabled
        enabled = options.get("SendingEnabled", True) if isinstance(options, dict) else bool(options)
        answer["SendingOptions"] = {"SendingEnabled": bool(enabled)}
        return answer

    ConfigurationSet.to_dict_v2 = to_dict_v2


def dkim_timestamps_in_epoch_seconds():
    original = EmailIdentity.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        stamp = self.dkim_attributes.get("LastKeyGenerationTimestamp")
        if isinstance(stamp, str):
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            self.dkim_attributes["LastKeyGenerationTimestamp"] = when.timestamp()

    EmailIdentity.__init__ = __init__


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    sending_enabled_as_a_boolean()
    dkim_timestamps_in_epoch_seconds()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(args.host, args.port, AtomicDynamoDb(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
