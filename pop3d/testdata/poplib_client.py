#!/usr/bin/env python3
"""Drive pop3d with Python's poplib, as a real client would.

usage: poplib_client.py HOST PORT CAFILE USER PASSWORD EXPECTED_DIR

EXPECTED_DIR holds 1.eml, 2.eml, ...: each message as the client should
reassemble it (CRLF line endings). The script checks STLS, USER/PASS,
UIDL, TOP and that every RETR equals the expected bytes, then deletes
message 1 and QUITs. It prints the UIDL listing, one "n uid" per line.
"""
import os
import poplib
import ssl
import sys


def main():
    host, port, cafile, user, password, expected_dir = sys.argv[1:7]
    ctx = ssl.create_default_context(cafile=cafile)
    pop = poplib.POP3(host, int(port), timeout=10)
    caps = pop.capa()
    assert "STLS" in caps, caps
    assert "USER" not in caps, "USER offered before TLS: %r" % caps
    pop.stls(context=ctx)
    caps = pop.capa()
    assert "USER" in caps and "UIDL" in caps and "TOP" in caps, caps
    pop.user(user)
    pop.pass_(password)

    count, size = pop.stat()
    names = sorted(os.listdir(expected_dir), key=lambda n: int(n.split(".")[0]))
    assert count == len(names), (count, names)

    resp, uidls, _ = pop.uidl()
    assert resp.startswith(b"+OK"), resp

    total = 0
    for i, name in enumerate(names, 1):
        with open(os.path.join(expected_dir, name), "rb") as f:
            want = f.read()
        resp, lines, octets = pop.retr(i)
        got = b"".join(line + b"\r\n" for line in lines)
        if got != want:
            sys.exit("message %d differs:\n got %r\nwant %r" % (i, got, want))
        listed = int(pop.list(i).split()[2])
        if listed != len(want):
            sys.exit("message %d: LIST says %d octets, message has %d" % (i, listed, len(want)))
        total += listed
        resp, top, _ = pop.top(i, 0)
        header = want.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        if top[: len(header)] != header:
            sys.exit("TOP %d 0: %r, want header %r" % (i, top, header))
    assert total == size, (total, size)

    pop.dele(1)
    resp = pop.quit()
    assert resp.startswith(b"+OK"), resp
    for line in uidls:
        print(line.decode())


if __name__ == "__main__":
    main()
