#!/usr/bin/env python3
"""Send one message with Python's smtplib, as smtpd's real-client test asks.

usage: smtplib_client.py MODE HOST PORT CAFILE FROM TO SUBJECT [USER PASS MECH]
MODE: plain (no TLS), starttls, implicit. MECH: PLAIN, LOGIN or CRAM-MD5.
Exits non-zero with the SMTP error on failure.
"""
import smtplib
import ssl
import sys
from email.message import EmailMessage


def main():
    mode, host, port, cafile, sender, rcpt, subject = sys.argv[1:8]
    auth = sys.argv[8:11]
    ctx = ssl.create_default_context(cafile=cafile)
    if mode == "implicit":
        s = smtplib.SMTP_SSL(host, int(port), context=ctx, timeout=20)
    else:
        s = smtplib.SMTP(host, int(port), timeout=20)
    with s:
        s.ehlo("python.test")
        if mode == "starttls":
            s.starttls(context=ctx)
            s.ehlo("python.test")
        if auth:
            user, password, mech = auth
            s.user, s.password = user, password
            obj = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login, "CRAM-MD5": s.auth_cram_md5}[mech]
            s.auth(mech, obj)
        m = EmailMessage()
        m["From"] = sender
        m["To"] = rcpt
        m["Subject"] = subject
        m.set_content("sent by smtplib\n")
        refused = s.send_message(m, from_addr=sender, to_addrs=[rcpt])
        if refused:
            sys.exit("refused: %r" % refused)


if __name__ == "__main__":
    try:
        main()
    except (smtplib.SMTPException, OSError) as e:
        sys.exit("smtplib: %r" % e)
