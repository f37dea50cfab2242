#!/bin/sh
# Draws a timeline, takes a screenshot of it in headless Chromium, and
# checks what a person would see: the picture is not blank, and the SVG
# names every actor of the trace.
#   screenshot.sh [TRACE]         a trace drawn by scn-timeline (default:
#                                 tests/scenarios/fig8.jsonl)
#   screenshot.sh --scenario FILE  the timeline `uksim run FILE --timeline`
#                                 draws; the SVG must also name every
#                                 server and app the scenario declares
#   ... --colours C,C...          and each colour covers at least 200
#                                 pixels (more than the key's square): the
#                                 overview's bands are drawn.  C is RRGGBB,
#                                 or RRGGBB@A for a band of opacity A over
#                                 white (the key has none of those)
# Skips (exit 77) without chromium or python3, and under valgrind, where a
# browser is neither traced nor useful.
set -eu
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind"
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || skip "chromium is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
root=${UKSIM_SOURCE_ROOT:?run under meson}
build=${UKSIM_BUILD_ROOT:?run under meson}
dir=$(mktemp -d "${TMPDIR:-/tmp}/uksim-shot.XXXXXX")
trap 'rm -rf "$dir"' EXIT
scenario=/dev/null
colours=""
if [ "${1:-}" = --scenario ]; then
  scenario=${2:?screenshot.sh --scenario FILE}
  shift 2
  [ "${1:-}" = --colours ] && colours=${2:?screenshot.sh --colours LIST}
  trace=$dir/t.jsonl
  "$build/cli/uksim" run "$scenario" --quiet --jsonl "$trace" \
    --timeline "$dir/t.html" >"$dir/run.log" 2>&1 ||
    { cat "$dir/run.log"; echo "screenshot: the run failed"; exit 1; }
else
  [ "${1:-}" = --colours ] && { colours=${2:?screenshot.sh --colours LIST}; shift 2; }
  trace=${1:-$root/tests/scenarios/fig8.jsonl}
  "$build/scenarios/scn-timeline" "$trace" "$dir/t.html" --title "timeline"
fi
# --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
if ! timeout 120 "$browser" --headless --no-sandbox --disable-gpu \
    --hide-scrollbars --no-first-run --user-data-dir="$dir/profile" \
    --window-size=1200,900 --screenshot="$dir/t.png" \
    "file://$dir/t.html" >"$dir/log" 2>&1; then
  cat "$dir/log"
  echo "screenshot: chromium failed"
  exit 1
fi

python3 - "$dir/t.png" "$dir/t.html" "$trace" "$scenario" "$colours" <<'PY'
"""Decodes the PNG (8-bit RGB or RGBA, no library needed), counts its
colours and the share of pixels that are not the background, and checks
every actor of the trace (and every process the scenario declares) is
named in the page's SVG."""
import html, json, struct, sys, zlib

def pixels(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat = 8, b""
    while at < len(data):
        n, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    assert depth == 8 and ctype in (2, 6), "unexpected PNG format"
    bpp = 3 if ctype == 2 else 4
    raw, stride, prev, rows = zlib.decompress(idat), w * bpp, None, []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        prev = prev or bytearray(stride)
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, [bytes(r[i:i + 3]) for r in rows for i in range(0, stride, bpp)]

png, page, trace, scenario, wanted = sys.argv[1:6]
w, h, px = pixels(png)
colours = {}
for p in px:
    colours[p] = colours.get(p, 0) + 1
background = max(colours, key=colours.get)
ink = 1 - colours[background] / len(px)
print(f"screenshot: {w}x{h}, {len(colours)} colours, {ink:.1%} ink")
assert len(colours) >= 8, "the screenshot is (nearly) one colour"
assert ink >= 0.01, "the screenshot is blank"
for spec in filter(None, wanted.split(",")):
    hexa, _, alpha = spec.partition("@")
    a = float(alpha or 1)
    rgb = [round(a * int(hexa[i:i + 2], 16) + (1 - a) * 255) for i in (0, 2, 4)]
    n = sum(c for p, c in colours.items()
            if all(abs(p[i] - rgb[i]) <= 2 for i in range(3)))
    print(f"screenshot: {spec}: {n} pixels")
    assert n >= 200, f"colour {spec} covers {n} pixels: its band is not drawn"

text = open(page, encoding="utf-8").read()
assert "<svg" in text and "</svg>" in text, "no SVG in the page"
text = text[text.index("<svg"):text.rindex("</svg>")]
actors = ["kernel"]
for line in open(trace, encoding="utf-8"):
    if line.strip():
        e = json.loads(line)
        for name in (e.get("actor"), e.get("peer")):
            if name and name not in actors:
                actors.append(name)
for line in open(scenario, encoding="utf-8"):
    words = line.split()
    if len(words) > 1 and words[0] in ("server", "app"):
        assert words[1] in actors, f"{words[1]} never appears in the trace"
for name in actors:
    assert f">{html.escape(name)}</text>" in text, f"{name} is not drawn"
print(f"screenshot: all {len(actors)} actors named: {' '.join(actors)}")
PY
echo "screenshot: ok"
