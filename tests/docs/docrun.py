#!/usr/bin/env python3
"""Re-runs every command block of a docs page and compares its output with
what the page shows, so a page that drifts from the code fails.

    docrun.py [--root DIR] PAGE.md          check the page (exit 0 or 1)
    docrun.py [--root DIR] --remake PAGE.md also rewrite each shown block
                                            that no longer matches with
                                            what the run printed
    docrun.py [--root DIR] --print PAGE.md  run it, print every block's
                                            whole output, compare nothing
    docrun.py --list DIR                    the pages under DIR to check

The notation (docs/README.md, "How the docs are checked"):

  A fenced block with info string `sh` is a command block.  The output
  the page shows for it is the next plain fenced block (no info string)
  after it and before the next `sh` block; prose and blocks with another
  info string may sit between them.  HTML comments `<!-- doc: ... -->` on
  the lines right above a `sh` block are directives for it: terminal N,
  stop N, wait-for GLOB S, exit N, skip REASON, timeout S.

How a page runs, as a small state machine per block:

  PARSED --(skip)--------------------------------------------> SKIPPED
  PARSED --(stop N: kill terminal N's process group)--> STOPPED-N ...
  ... --(wait-for GLOB S: path there within S s)--------> READY
                       (not there)-------------------------------> FAILED
  READY --(terminal N)--> BACKGROUND (output kept, never compared)
  READY --> RUNNING --(exit status as expected)--> RAN
                    --(other status, or the timeout)-------------> FAILED
  RAN --(every shown line found, in order, after masking)--> MATCHED
      --(a shown line missing)-----------------------------------> FAILED

  One bash session runs every block of a page, in order, from the
  repository's root, so variables and `cd` carry over; each block is
  sourced under `set -e -o pipefail`, so a failing command ends the
  session (and the page).  A block with `doc: exit N` runs in a subshell
  (its status is then read, not fatal) and a terminal block runs in the
  background in its own process group; neither carries variables back.
  At the page's end (or the first failure) the session's and every
  terminal's process group are killed.
"""

import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# Limits (README.md's limits table lists them).
DEFAULT_TIMEOUT_S = 120  # a block that runs longer fails
MAX_SKIPS_PER_PAGE = 2  # more `doc: skip` blocks than this fail the page
CONTEXT_LINES = 12  # actual lines shown around where a line was expected

DIRECTIVE = re.compile(r"^\s*<!--\s*doc:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")


class PageError(Exception):
    """The page breaks the notation (an unknown directive, a directive
    that is not above a `sh` block, an unclosed fence)."""


class Block:
    def __init__(self, line, text):
        self.line = line  # 1-based line of the opening fence
        self.text = text
        self.shown = None  # the shown output's text, or None
        self.shown_span = None  # (first, last) 0-based lines of its body
        self.terminal = None
        self.stops = []
        self.wait_for = None  # (glob, seconds)
        self.exit = 0
        self.skip = None
        self.timeout = DEFAULT_TIMEOUT_S


def parse_directive(block, words, where):
    """Applies one `doc:` directive's words to the block it stands over."""
    name, args = (words[0], words[1:]) if words else ("", [])

    def number(text):
        if not re.fullmatch(r"\d+", text):
            raise PageError(f"{where}: doc: {name} wants a number, not {text!r}")
        return int(text)

    if name in ("terminal", "stop", "exit", "timeout") and len(args) != 1:
        raise PageError(f"{where}: doc: {name} takes one number")
    if name == "terminal":
        block.terminal = number(args[0])
    elif name == "stop":
        block.stops.append(number(args[0]))
    elif name == "exit":
        block.exit = number(args[0])
    elif name == "timeout":
        block.timeout = max(1, number(args[0]))
    elif name == "wait-for":
        if len(args) != 2:
            raise PageError(f"{where}: doc: wait-for takes a path and seconds")
        block.wait_for = (args[0], number(args[1]))
    elif name == "skip":
        if not args:
            raise PageError(f"{where}: doc: skip needs a reason")
        block.skip = " ".join(args)
    else:
        raise PageError(f"{where}: unknown directive doc: {' '.join(words)}")


def fences(lines):
    """Yields (open_line, info, body_first, body_end) for each fenced
    block; body lines are lines[body_first:body_end]."""
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        mark, info = m.group(2), m.group(3)
        j = i + 1
        while j < len(lines):
            c = lines[j].strip()
            if c.startswith(mark[0] * len(mark)) and c.strip(mark[0]) == "":
                break
            j += 1
        if j == len(lines):
            raise PageError(f"line {i + 1}: a fence that never closes")
        yield i, info, i + 1, j
        i = j + 1


def parse(path):
    """The page's command blocks, each with its directives and shown
    output."""
    lines = open(path, encoding="utf-8").read().splitlines()
    blocks, used, last = [], set(), None
    for start, info, first, end in fences(lines):
        if info == "sh":
            block = Block(start + 1, "\n".join(lines[first:end]) + "\n")
            k = start - 1
            while k >= 0 and DIRECTIVE.match(lines[k]):
                words = DIRECTIVE.match(lines[k]).group(1).split()
                parse_directive(block, words, f"{path}:{k + 1}")
                used.add(k)
                k -= 1
            blocks.append(block)
            last = block
        elif info == "" and last is not None and last.shown is None:
            last.shown = "\n".join(lines[first:end])
            last.shown_span = (first, end)
    for k, text in enumerate(lines):
        if DIRECTIVE.match(text) and k not in used:
            raise PageError(f"{path}:{k + 1}: a doc: directive that is not "
                            "right above a sh block")
    return lines, blocks


# Masking: what differs from run to run becomes '#'.  Order matters: hex
# before numbers with units (0x1s is an address), paths first of all.
MASKS = [
    (re.compile(r"/tmp/[^\s'\"`,;:()\[\]{}<>]*"), "#"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "0x#"),
    (re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:ns|µs|us|ms|s|KiB|MiB|GiB|%)"
                r"(?![A-Za-z0-9])"), "#"),
    (re.compile(r"\bpid \d+\b"), "pid #"),
    (re.compile(r"\[\s*\d+\]"), "[#]"),
]


def mask(line):
    for rx, to in MASKS:
        line = rx.sub(to, line)
    return line.rstrip()


def is_elision(line):
    return line.strip() in ("...", "…")


def compare(shown, actual):
    """None if every non-blank shown line is in the actual output in order
    (after masking); else (the missing shown line, the index in the actual
    lines from which it was looked for)."""
    got = [mask(a) for a in actual.splitlines()]
    i = 0
    for want in shown.splitlines():
        if not want.strip() or is_elision(want):
            continue
        w = mask(want)
        j = i
        while j < len(got) and got[j] != w:
            j += 1
        if j == len(got):
            return want, i
        i = j + 1
    return None


class Session:
    """One bash for a page, fed one step at a time through its stdin; each
    step writes its status to a file the runner waits for."""

    def __init__(self, root, tmp):
        self.tmp = tmp
        self.ctl = os.path.join(tmp, ".docrun")
        os.makedirs(self.ctl)
        # Machines' names are the page's own: their run directory
        # ($XDG_RUNTIME_DIR/uksim/NAME) is under $DOC_TMP, so a page's
        # `--name lab` meets no other page's or person's lab.
        run = os.path.join(tmp, "run")
        os.makedirs(run, mode=0o700)
        env = dict(os.environ, DOC_TMP=tmp, XDG_RUNTIME_DIR=run)
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-s"], cwd=root, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, text=True)
        self.terminals = {}  # N -> (pgid, output file)
        self.steps = 0
        # A step's status appears whole (written aside, then renamed).
        self.send("__docrun_done() { echo \"$1\" > \"$DOCRUN_STATUS.t\"; "
                  "mv \"$DOCRUN_STATUS.t\" \"$DOCRUN_STATUS\"; }\n"
                  "__docrun_wait() { local i; for ((i = 0; i < $2 * 10; "
                  "i++)); do compgen -G \"$1\" > /dev/null && return 0; "
                  "sleep 0.1; done; return 1; }\n")

    def send(self, text):
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def step(self, script, timeout):
        """Runs script (bash text that must end by writing $DOCRUN_STATUS);
        returns the status it wrote, or ('died', code) / ('timeout',)."""
        self.steps += 1
        status = os.path.join(self.ctl, f"status.{self.steps}")
        self.send(f"DOCRUN_STATUS={status}\n{script}\n")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if os.path.exists(status):
                return int(open(status).read().strip() or "0")
            if self.proc.poll() is not None:
                return ("died", self.proc.returncode)
            time.sleep(0.05)
        return ("timeout",)

    def run(self, block, n):
        """Runs a command block; returns (status, output file)."""
        script = os.path.join(self.ctl, f"block.{n}.sh")
        out = os.path.join(self.ctl, f"out.{n}")
        with open(script, "w") as f:
            f.write(block.text)
        if block.terminal is not None:
            if block.terminal in self.terminals:
                return ("busy",), out
            # set -m puts the job in a process group of its own, so the
            # page can kill all a terminal started and nothing else.
            # Inside, job control is off again, or each pipeline would
            # get a group of its own and outlive the kill.
            self.send(f"set -m\n( set +m -e -o pipefail; . {script} ) > {out} "
                      f"2>&1 < /dev/null &\necho $! > {out}.pid\nset +m\n")
            res = self.step("__docrun_done 0", 10)
            pid = int(open(out + ".pid").read())
            self.terminals[block.terminal] = (pid, out)
            return res, out
        if block.exit:
            # Expected to fail: in a subshell, so its failure is a status.
            body = (f"( set -e -o pipefail; . {script} ) > {out} 2>&1 "
                    f"< /dev/null\n__docrun_done $?")
        else:
            # Sourced, so variables and cd carry over to the next block;
            # under set -e a failing command ends the whole session.
            body = (f"set -e -o pipefail\n. {script} > {out} 2>&1 < /dev/null"
                    f"\nset +e +o pipefail\n__docrun_done 0")
        return self.step(body, block.timeout), out

    def wait_for(self, pattern, seconds):
        return self.step(f"__docrun_wait \"{pattern}\" {seconds} && "
                         "__docrun_done 0 || __docrun_done 1", seconds + 5)

    def stop(self, n):
        """Kills terminal n's process group: TERM, then KILL after 3 s."""
        if n not in self.terminals:
            return False
        pgid, _ = self.terminals.pop(n)
        kill_group(pgid)
        return True

    def close(self):
        for n in list(self.terminals):
            self.stop(n)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        kill_group(self.proc.pid, self.proc)
        self.proc.wait()


def kill_group(pgid, child=None):
    """TERM to the group, KILL 3 s later if any of it is left; child, the
    runner's own child in it, is reaped as it goes (a zombie would keep
    the group alive)."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    end = time.monotonic() + 3
    while time.monotonic() < end:
        if child is not None:
            child.poll()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def read(path):
    if not os.path.exists(path):
        return ""
    return open(path, "rb").read().decode("utf-8", "replace")


def indent(text, prefix="    | "):
    return "\n".join(prefix + t for t in text.rstrip("\n").splitlines())


def print_terminals(session):
    """What each running terminal printed: a failing block's usual cause."""
    for t, (_, out) in session.terminals.items():
        print(f"  terminal {t} printed:")
        print(indent(read(out)) or "    (nothing)")


def report_block(page, block, what):
    print(f"{page}:{block.line}: {what}")
    print("  the block:")
    print(indent(block.text))


def report_mismatch(page, block, actual, want, at):
    report_block(page, block, "the output drifted from what the page shows")
    print(f"  first shown line not found (in order, after masking):")
    print(f"    {want}")
    print(f"    masked: {mask(want)}")
    got = actual.splitlines()
    lo = max(0, at - 2)
    hi = min(len(got), at + CONTEXT_LINES)
    print(f"  the actual output around where it was expected "
          f"(lines {lo + 1}-{hi} of {len(got)}):")
    print(indent("\n".join(got[lo:hi])) if got[lo:hi] else "    (nothing)")


def check_page(path, root, mode):
    """Runs the page; returns (ok, {block index: actual output})."""
    lines, blocks = parse(path)
    page = os.path.relpath(path, root)
    skips = [b for b in blocks if b.skip]
    if len(skips) > MAX_SKIPS_PER_PAGE:
        print(f"{page}: {len(skips)} blocks skipped, at most "
              f"{MAX_SKIPS_PER_PAGE} may be (doc: skip is for what cannot "
              "run in a test)")
        return False, {}
    tmp = tempfile.mkdtemp(prefix="docrun.", dir="/tmp")
    session = Session(root, tmp)
    outputs, ok, compared = {}, True, 0
    try:
        for n, block in enumerate(blocks):
            for t in block.stops:
                if not session.stop(t):
                    report_block(page, block, f"doc: stop {t}: no terminal {t}"
                                 " runs")
                    return False, outputs
            if block.skip:
                print(f"{page}:{block.line}: skipped: {block.skip}")
                continue
            if block.wait_for:
                pattern, secs = block.wait_for
                if session.wait_for(pattern, secs) != 0:
                    report_block(page, block, f"doc: wait-for {pattern}: "
                                 f"nothing there after {secs} s")
                    print_terminals(session)
                    return False, outputs
            status, out = session.run(block, n)
            actual = read(out)
            if status != block.exit:
                if status == ("busy",):
                    what = (f"terminal {block.terminal} still runs: "
                            f"doc: stop {block.terminal} first")
                elif status == ("timeout",):
                    what = f"still running after {block.timeout} s"
                elif isinstance(status, tuple):
                    what = (f"a command failed (status {status[1]}); the "
                            f"block must exit {block.exit}")
                else:
                    what = f"exited {status}, not {block.exit}"
                report_block(page, block, what)
                print("  it printed:")
                print(indent(actual) or "    (nothing)")
                print_terminals(session)
                return False, outputs
            outputs[n] = actual  # only a block that ran as it should
            if block.terminal is not None:
                continue
            if mode == "print":
                print(f"==== {page}:{block.line}")
                print(actual, end="")
                continue
            if block.shown is None:
                continue
            compared += 1
            miss = compare(block.shown, actual)
            if miss:
                ok = False
                if mode != "remake":
                    report_mismatch(page, block, actual, *miss)
                    return False, outputs
    finally:
        session.close()
        shutil.rmtree(tmp, ignore_errors=True)
    ran = sum(1 for b in blocks if not b.skip)
    print(f"{page}: {ran} blocks ran, {compared} outputs matched, "
          f"{len(skips)} skipped")
    return ok, outputs


def remake(page, root):
    """Rewrites every shown block that no longer matches with the whole
    output of a real run; the author then trims it to an excerpt."""
    lines, blocks = parse(page)
    _, outputs = check_page(page, root, "remake")
    edits = []
    for n, block in enumerate(blocks):
        if block.shown is None or n not in outputs:
            continue
        if compare(block.shown, outputs[n]) is None:
            continue
        edits.append((block.shown_span, outputs[n].rstrip("\n").splitlines()))
    for (first, end), new in sorted(edits, reverse=True):
        lines[first:end] = new
    with open(page, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{page}: {len(edits)} shown outputs re-made from this run")
    return True


def pages(root):
    """README.md, every docs/*.md with a command block, every lab page
    (docs/labs/*.md; its index, README.md, only with command blocks) and
    every solution page with command blocks."""
    found = []
    for pattern, must in (("README.md", False), ("docs/*.md", False),
                          ("docs/labs/*.md", True),
                          ("docs/labs/solutions/*.md", False)):
        for path in sorted(glob.glob(os.path.join(root, pattern))):
            rel = os.path.relpath(path, root)
            text = open(path, encoding="utf-8").read()
            has = re.search(r"^\s*(`{3,}|~{3,})\s*sh\s*$", text, re.M)
            if has or (must and os.path.basename(rel) != "README.md"):
                found.append(rel)
    return found


def test_name(rel):
    name = rel[len("docs/"):] if rel.startswith("docs/") else rel
    return "docs-" + name[:-len(".md")].replace("/", "-")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=None,
                    help="the repository's root (default: the current "
                    "directory)")
    ap.add_argument("--list", action="store_true",
                    help="print 'TEST-NAME PAGE' for every page to check")
    ap.add_argument("--listed", metavar="LIST",
                    help="with --list: fail unless the pages to check are "
                    "LIST (what meson listed when it configured)")
    ap.add_argument("--remake", action="store_true")
    ap.add_argument("--print", dest="print_", action="store_true")
    ap.add_argument("page", nargs="?")
    a = ap.parse_args()
    root = os.path.abspath(a.root or os.getcwd())
    if a.list:
        now = [f"{test_name(rel)} {rel}"
               for rel in pages(os.path.abspath(a.page or root))]
        if a.listed is None:
            print("\n".join(now))
            return 0
        if now == a.listed.strip().split("\n"):
            print(f"{len(now)} pages, each checked by its test")
            return 0
        print("the pages changed since meson listed them; run "
              "`meson setup --reconfigure build`.  Now:")
        print("\n".join(now))
        return 1
    if not a.page:
        ap.error("a page to check")
    page = a.page if os.path.isabs(a.page) else os.path.join(root, a.page)
    rel = os.path.relpath(page, root)
    try:
        if a.remake:
            return 0 if remake(page, root) else 1
        _, blocks = parse(page)
        if not blocks:
            print(f"{rel}: no command block (a lab must have commands)")
            return 1
        ok, _ = check_page(page, root, "print" if a.print_ else "check")
        return 0 if ok else 1
    except PageError as e:
        print(f"{rel}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
