#!/usr/bin/env python3
"""Prints the newest email in outbox/ (or the .eml file named) as a person
would read its plain-text part: From, To, Subject, then the text, with
every link whole (the file itself is quoted-printable, which splits long
lines). Only Python's standard library.

    python3 scripts/last-mail.py                # the newest outbox/*.eml
    python3 scripts/last-mail.py --to ADDRESS   # the newest one to ADDRESS
    python3 scripts/last-mail.py FILE.eml
"""

import email
import email.policy
import glob
import os
import sys


def newest(to):
    files = sorted(glob.glob("outbox/*.eml"), key=os.path.getmtime, reverse=True)
    for path in files:
        message = read(path)
        if to is None or to.lower() in str(message["To"]).lower():
            return message
    sys.exit("no message in outbox/" + ("" if to is None else " to " + to))


def read(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def main(args):
    if len(args) == 2 and args[0] == "--to":
        message = newest(args[1])
    elif len(args) == 1 and not args[0].startswith("-"):
        message = read(args[0])
    elif not args:
        message = newest(None)
    else:
        sys.exit(__doc__)
    for header in ("From", "To", "Subject"):
        print(f"{header}: {message[header]}")
    print()
    text = message.get_body(preferencelist=("plain",))
    print(text.get_content() if text is not None else "(no text part)")


if __name__ == "__main__":
    main(sys.argv[1:])
