"""An IMAP client for the tests, independent of the one tidings uses:
Python's imaplib, on a server on 127.0.0.1 without TLS.

    imapcheck.py PORT USER PASSWORD append FOLDER FILE...
        appends each file (as is) to FOLDER, creating it if missing;
        prints the UID of each
    imapcheck.py PORT USER PASSWORD list FOLDER
        one JSON line per message of FOLDER, read without changing it
        (EXAMINE, BODY.PEEK): {"uid", "flags", "test"} where "test" is the
        message's X-Test header
    imapcheck.py PORT USER PASSWORD folders
        the folder names, one a line
"""

import json
import re
import sys
import imaplib


def main():
    port, user, password, command, *args = sys.argv[1:]
    imap = imaplib.IMAP4("127.0.0.1", int(port))
    imap.login(user, password)
    if command == "append":
        folder, files = args[0], args[1:]
        if folder.upper() != "INBOX":
            imap.create(quote(folder))
        for path in files:
            with open(path, "rb") as f:
                raw = f.read()
            typ, data = imap.append(quote(folder), None, None, raw)
            if typ != "OK":
                sys.exit(f"APPEND {path}: {typ} {data}")
            found = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            print(found.group(1).decode() if found else "?")
    elif command == "list":
        typ, data = imap.select(quote(args[0]), readonly=True)
        if typ != "OK":
            sys.exit(f"EXAMINE {args[0]}: {typ} {data}")
        if int(data[0]) > 0:
            typ, data = imap.uid(
                "FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (X-TEST)])"
            )
            for item in data:
                if not isinstance(item, tuple):
                    continue
                head, header = item
                uid = int(re.search(rb"UID (\d+)", head).group(1))
                flags = re.search(rb"FLAGS \(([^)]*)\)", head).group(1).decode().split()
                test = header.decode(errors="replace").partition(":")[2].strip()
                print(json.dumps({"uid": uid, "flags": flags, "test": test}))
    elif command == "folders":
        typ, data = imap.list()
        for line in data:
            name = line.decode().rsplit(" ", 1)[1]
            print(name.strip('"'))
    else:
        sys.exit(f"unknown command {command}")
    imap.logout()


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


main()
