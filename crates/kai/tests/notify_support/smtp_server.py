"""A real SMTP server for kai's notification tests, on aiosmtpd.

    python3 smtp_server.py <dir>

Listens on 127.0.0.1 on a free port and prints that port on the first line of
stdout. Each message it accepts is written to <dir>/<n>.json (written whole, then
renamed) with its envelope, its decoded From/To/Subject headers, its plain-text body
and the login it authenticated with. When KAI_TEST_SMTP_EXPECT_USER and
KAI_TEST_SMTP_EXPECT_PASSWORD are set, AUTH is required (over plain text: loopback
only) and only that pair is accepted. Runs until killed.
"""

import asyncio
import json
import os
import sys
from email import message_from_bytes, policy

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Mailbox:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "content_type": message.get_content_type(),
            "charset": message.get_content_charset(),
            "body": body.get_content().replace("\r\n", "\n") if body is not None else "",
            "login": login,
            "raw": envelope.content.decode("utf-8", "replace"),
        }
        self.count += 1
        path = os.path.join(self.directory, "%03d.json" % self.count)
        with open(path + ".tmp", "w", encoding="utf-8") as out:
            json.dump(record, out, ensure_ascii=False, indent=1)
        os.rename(path + ".tmp", path)
        return "250 Message accepted"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


async def main(directory):
    user = os.environ.get("KAI_TEST_SMTP_EXPECT_USER")
    password = os.environ.get("KAI_TEST_SMTP_EXPECT_PASSWORD")
    handler = Mailbox(directory)
    options = {"hostname": "kai-test-smtp"}
    if user and password:
        options.update(authenticator=authenticator(user, password), auth_required=True, auth_require_tls=False)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **options), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
