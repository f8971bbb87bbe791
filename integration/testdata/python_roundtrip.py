"""Send a message with smtplib (submission, STARTTLS, AUTH) and read it back
with poplib (POP3S, UIDL, RETR) and imaplib (IMAPS, UID SEARCH, FETCH).

Usage: python_roundtrip.py CAFILE HOST SUBMISSION_PORT POP3S_PORT IMAPS_PORT
                           SENDER SENDER_PASS RCPT RCPT_PASS MESSAGE_FILE

The message file holds the whole message (CRLF line ends) with a unique
Message-ID. Prints "uidl=<uidl> uid=<uid> uidvalidity=<n>" on success; any
failure raises (non-zero exit). Certificates are verified against CAFILE.
"""
import email
import imaplib
import poplib
import smtplib
import ssl
import sys


def main():
    (cafile, host, sub_port, pop_port, imap_port, sender, sender_pass,
     rcpt, rcpt_pass, msg_file) = sys.argv[1:]
    ctx = ssl.create_default_context(cafile=cafile)
    raw = open(msg_file, "rb").read()
    msgid = email.message_from_bytes(raw)["Message-ID"].strip()

    with smtplib.SMTP(host, int(sub_port), timeout=20) as s:
        s.ehlo("python.example.net")
        s.starttls(context=ctx)
        s.ehlo("python.example.net")
        s.login(sender, sender_pass)
        refused = s.sendmail(sender, [rcpt], raw)
        if refused:
            raise SystemExit("refused: %r" % refused)

    # POP3: find the message by Message-ID, compare it byte for byte.
    p = poplib.POP3_SSL(host, int(pop_port), context=ctx, timeout=20)
    p.user(rcpt)
    p.pass_(rcpt_pass)
    uidl = None
    for line in p.uidl()[1]:
        num, uid = line.decode().split()
        body = b"\r\n".join(p.retr(int(num))[1]) + b"\r\n"
        if msgid.encode() in body:
            if not body.endswith(raw.split(b"\r\n\r\n", 1)[1]):
                raise SystemExit("POP3 body differs from what was sent")
            uidl = uid
    p.quit()
    if uidl is None:
        raise SystemExit("message not found over POP3")

    # IMAP: the same message, by header search.
    m = imaplib.IMAP4_SSL(host, int(imap_port), ssl_context=ctx, timeout=20)
    m.login(rcpt, rcpt_pass)
    typ, _ = m.select("INBOX", readonly=True)
    if typ != "OK":
        raise SystemExit("SELECT failed")
    uidvalidity = m.untagged_responses.get("UIDVALIDITY", [b"?"])[0].decode()
    typ, data = m.uid("SEARCH", None, "HEADER", "Message-ID", msgid.strip("<>"))
    uids = data[0].split()
    if typ != "OK" or len(uids) != 1:
        raise SystemExit("UID SEARCH found %r" % data)
    typ, data = m.uid("FETCH", uids[0], "(BODY.PEEK[])")
    fetched = data[0][1]
    if not fetched.endswith(raw.split(b"\r\n\r\n", 1)[1]):
        raise SystemExit("IMAP body differs from what was sent")
    m.logout()
    print("uidl=%s uid=%s uidvalidity=%s" % (uidl, uids[0].decode(), uidvalidity))


if __name__ == "__main__":
    main()
