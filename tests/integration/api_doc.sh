#!/bin/sh
# The header manual (issue 17, the kit): every function declared in the
# student's headers (ap.h, ica.h, server.h, ns.h) has, in the comment above
# it or above the group it belongs to, "Errors:" (or "No errors") and
# "Example", and a line of docs/api.md names it.  It fails naming the
# calls that lack them.
#   api_doc.sh
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "it checks text, not uksim"
python3 - "$UKSIM_SOURCE_ROOT" <<'PY'
import re, sys
root = sys.argv[1]
index = open(root + "/docs/api.md", encoding="utf-8").read()
bad = []
for h in ("ap.h", "ica.h", "server.h", "ns.h"):
    text = open(root + "/include/uksim/" + h, encoding="utf-8").read()
    # Declarations and the comment before each run of them.
    comment = ""
    for block in re.split(r"\n\s*\n", text):
        m = re.search(r"/\*(.*?)\*/", block, re.S)
        if m:
            comment = m.group(1)
        for name in re.findall(r"^[a-z][\w \*]*?\b(\w+)\(", block, re.M):
            if name in ("if", "return", "while", "for", "sizeof"):
                continue
            if not re.search(r"Errors:|No errors", comment):
                bad.append(f"{h}: {name}: no Errors:")
            if "Example" not in comment:
                bad.append(f"{h}: {name}: no Example")
            if f"`{name}`" not in index:
                bad.append(f"{h}: {name}: not in docs/api.md")
print("\n".join(bad) if bad else "api_doc.sh: every call is documented")
sys.exit(1 if bad else 0)
PY
