#!/usr/bin/env python3
"""Drive mailsuite's imapd with Python's imaplib (a real, independent client).

usage: imaplib_client.py HOST PORT CAFILE USER PASSWORD starttls|imaps

Prints "IDLING" when an IDLE is in progress (the Go test then delivers a
message and expects it to arrive as EXISTS), and "DONE" at the end. Any
failure raises, so the exit status is non-zero.
"""
import imaplib
import re
import ssl
import sys
import time

host, port, cafile, user, password, mode = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False  # the test certificate names localhost and 127.0.0.1

if mode == "imaps":
    m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ctx)
else:
    m = imaplib.IMAP4(host, int(port))
    assert "STARTTLS" in m.capabilities, m.capabilities
    assert "LOGINDISABLED" in m.capabilities, m.capabilities
    m.starttls(ssl_context=ctx)


def ok(resp, what):
    typ, data = resp
    if typ != "OK":
        raise SystemExit("%s: %s %r" % (what, typ, data))
    return data


ok(m.login(user, password), "LOGIN")
caps = ok(m.capability(), "CAPABILITY")[0].decode()
for cap in ("IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE"):
    assert cap in caps.split(), (cap, caps)

folders = ok(m.list(), "LIST")
names = [f.decode() for f in folders]
assert any(n.endswith('"/" INBOX') for n in names), names
assert any("\\Sent" in n for n in names), names

msg = b"From: py@example.net\r\nTo: alice@example.org\r\nSubject: from imaplib\r\n\r\nhello from python\r\n"
data = ok(m.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(time.time()), msg), "APPEND")
assert b"APPENDUID" in data[0], data

count = int(ok(m.select("INBOX"), "SELECT")[0])
assert count >= 1, count

data = ok(m.search(None, "SUBJECT", '"from imaplib"'), "SEARCH")
seqs = data[0].split()
assert len(seqs) == 1, data
seq = seqs[0]

data = ok(m.fetch(seq, "(FLAGS RFC822.SIZE BODY.PEEK[])"), "FETCH")
assert data[0][1] == msg, data[0][1]
assert b"\\Flagged" in data[0][0], data[0][0]
assert b"RFC822.SIZE %d" % len(msg) in data[0][0], data[0][0]

data = ok(m.store(seq, "+FLAGS", "(\\Seen $Label1)"), "STORE")
assert b"\\Seen" in data[0] and b"$Label1" in data[0], data

uid = re.search(rb"UID (\d+)", ok(m.fetch(seq, "(UID)"), "FETCH UID")[0]).group(1).decode()
data = ok(m.uid("MOVE", uid, "Archive"), "UID MOVE")
st = ok(m.status("Archive", "(MESSAGES)"), "STATUS")[0]
assert b"MESSAGES 1" in st, st

# IDLE by hand: imaplib has no IDLE command.
tag = m._new_tag().decode()
m.send(("%s IDLE\r\n" % tag).encode())
line = m.readline()
assert line.startswith(b"+"), line
print("IDLING", flush=True)
m.sock.settimeout(5)
exists = None
while exists is None:
    line = m.readline()
    mo = re.match(rb"\* (\d+) EXISTS", line)
    if mo:
        exists = int(mo.group(1))
m.send(b"DONE\r\n")
while True:
    line = m.readline()
    if line.startswith(tag.encode()):
        assert b" OK" in line, line
        break
print("EXISTS", exists, flush=True)

m.logout()
print("DONE", flush=True)
