#!/usr/bin/env python3
"""Types command lines into a real interactive shell, pressing TAB, then Enter.

    type.py SHELL KAI LINE...

SHELL is bash, zsh or fish, started without the user's startup files on a pseudo
terminal (or zsh-fpath: zsh with the script installed in fpath as `_kai`, not
sourced). It loads kai's completion (`COMPLETE=<shell> KAI`), defines `kai` as a
function that prints its arguments, then for each LINE types it, presses TAB, then
Enter, and prints what the function printed: the line as completion left it. Exits 1
(with what the terminal showed on stderr) when a line brought nothing.
"""
import os
import pty
import re
import select
import sys
import time

shell, kai, lines = sys.argv[1], sys.argv[2], sys.argv[3:]
quoted = "'" + kai.replace("'", "'\\''") + "'"
setups = {
    "bash": (["bash", "--norc", "--noprofile", "-i"], [
        "PS1='$ '",
        f"source <(COMPLETE=bash {quoted})",
        "kai() { printf 'ARGS<%s>\\n' \"$*\"; }",
    ]),
    "zsh": (["zsh", "-f", "-i"], [
        "PS1='$ '",
        "autoload -Uz compinit && compinit -u -D",
        f"source <(COMPLETE=zsh {quoted})",
        "kai() { print -r -- \"ARGS<$*>\" }",
    ]),
    # zsh with kai's script installed in fpath as `_kai` (as the Debian package does),
    # not sourced: compinit finds it, and the first TAB must already complete.
    "zsh-fpath": (["zsh", "-f", "-i"], [
        "PS1='$ '",
        f"mkdir -p .zfunc && COMPLETE=zsh {quoted} > .zfunc/_kai && fpath=(\"$PWD/.zfunc\" $fpath)",
        "autoload -Uz compinit && compinit -u -D",
        "kai() { print -r -- \"ARGS<$*>\" }",
    ]),
    "fish": (["fish", "--no-config", "-i"], [
        f"COMPLETE=fish {quoted} | source",
        "function kai; echo \"ARGS<$argv>\"; end",
    ]),
}
argv, setup = setups[shell]

pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "dumb" if shell != "fish" else "xterm"
    os.execvp(argv[0], argv)

output = b""


def read_for(seconds, until=None):
    global output
    deadline = time.time() + seconds
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            output += chunk
            if chunk.find(b"\x1b[c") >= 0 or chunk.find(b"\x1b[0c") >= 0:
                os.write(fd, b"\x1b[?62;c")  # answer a terminal query, as a terminal would
        if until is not None and until.search(output):
            return


def send(text):
    os.write(fd, text.encode())


def quiet(longest):
    """Reads until the terminal has been still for a moment (or `longest` seconds)."""
    deadline = time.time() + longest
    while time.time() < deadline:
        before = len(output)
        read_for(0.3)
        if len(output) == before:
            return


def clean(raw):
    return re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>]|\r", b"", raw).decode(errors="replace")


quiet(3)
send("\r".join(setup) + "\recho READ''Y\r")
read_for(10, re.compile(rb"READY"))
quiet(2)
results = []
for line in lines:
    start = len(output)
    send(line)
    quiet(2)
    send("\t")
    quiet(3)
    send("\r")
    marker = re.compile(rb"ARGS<[^>\n]*>")
    deadline = time.time() + 5
    while time.time() < deadline and not marker.search(output, start):
        read_for(0.2)
    found = re.findall(r"ARGS<([^>\n]*)>", clean(output[start:]))
    if not found:
        sys.stderr.write(clean(output))
        sys.exit(1)
    results.append(found[-1])
    quiet(1)
send("exit\r")
read_for(0.5)
try:
    os.kill(pid, 9)
except OSError:
    pass
for result in results:
    print(result)
