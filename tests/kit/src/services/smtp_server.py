"""A real SMTP server for crowsnest's tests: python3-aiosmtpd (Debian) with
STARTTLS (required) or implicit TLS, and AUTH PLAIN/LOGIN (required).

Usage: smtp_server.py MODE PORT CERT KEY USER PASSWORD MAILBOX FAULTS
  MODE     starttls | tls
  MAILBOX  each accepted message is appended as one JSON line
  FAULTS   each DATA pops the first line of this file, if any, and answers it
           instead of accepting (e.g. "451 4.3.0 Try again later")
"""

import json
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, port, cert, key, user, password, mailbox, faults = sys.argv[1:9]


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    return AuthResult(success=ok, handled=False)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        with open(faults, "r+", encoding="utf-8") as file:
            lines = file.read().splitlines()
            if lines:
                file.seek(0)
                file.truncate()
                file.write("".join(line + "\n" for line in lines[1:]))
                return lines[0]
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "authenticated": bool(session.authenticated),
            "tls": mode == "tls" or session.ssl is not None,
        }
        with open(mailbox, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
        return "250 2.0.0 Message accepted for delivery"


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
common = dict(
    hostname="127.0.0.1",
    port=int(port),
    authenticator=authenticator,
    auth_required=True,
)
if mode == "starttls":
    controller = Controller(Handler(), tls_context=context, require_starttls=True, **common)
else:
    # The whole connection is TLS: AUTH needs no STARTTLS first.
    controller = Controller(Handler(), ssl_context=context, auth_require_tls=False, **common)
controller.start()
print("ready", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
controller.stop()
