#!/bin/sh
# Builds the libFuzzer targets with clang (outside meson) and runs each for
# a short while from the seed corpus: the net9p decoder and server, and the
# scenario parser and trace reader (fuzz_scn, seeded with the shipped
# scenarios).  Exits non-zero if a target crashes, leaks, or fails to build.
#   FUZZ_SECONDS  the budget is 2 x FUZZ_SECONDS in all (default 45), shared
#                 evenly by the three targets
# Needs: clang, libclang-rt-<ver>-dev (libFuzzer + sanitizers),
#        libsodium-dev, libuv1-dev (header only), libjansson-dev.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
# The total stayed 2 x FUZZ_SECONDS when fuzz_scn joined the two others.
secs=$(( 2 * ${FUZZ_SECONDS:-45} / 3 ))
[ "$secs" -ge 1 ] || secs=1
cc=${CC:-clang}
out=$(mktemp -d "${TMPDIR:-/tmp}/uksim-fuzz.XXXXXX")
trap 'rm -rf "$out"' EXIT
lib="addr.c auth.c error.c fcall.c fid.c fmt.c memfs.c srv.c util.c"
srcs=""
for f in $lib; do srcs="$srcs $root/net9p/$f"; done
scn_srcs=""
for f in scn.c scn_lex.c scn_action.c scn_count.c trace.c trace_read.c trace_pb.c timeline.c; do
  scn_srcs="$scn_srcs $root/scenarios/$f"
done
# The trace reader also reads the binary (protobuf-c) form.
protoc-c --proto_path="$root/scenarios" --c_out="$out" trace.proto
scn_srcs="$scn_srcs $out/trace.pb-c.c"
flags="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I$root/include -I$root/net9p
       -I$root/tests/net9p -I$root/scenarios -I$out
       $(pkg-config --cflags libuv libsodium jansson)"
status=0
for t in decode srv scn; do
  echo "fuzz: building fuzz_$t"
  if [ "$t" = scn ]; then
    tsrcs=$scn_srcs libs="$(pkg-config --libs jansson libprotobuf-c)"
  else
    tsrcs=$srcs libs=$(pkg-config --libs libsodium)
  fi
  # shellcheck disable=SC2086
  $cc $flags $tsrcs "$root/tests/fuzz/fuzz_$t.c" $libs -o "$out/fuzz_$t"
  mkdir -p "$out/corpus_$t"
  # fuzz_scn's seeds are the shipped scenarios as they are now.
  [ "$t" = scn ] && cp "$root"/scenarios/*.scn "$out/corpus_$t/"
  echo "fuzz: running fuzz_$t for ${secs}s"
  if ! "$out/fuzz_$t" -max_total_time="$secs" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/" "$out/corpus_$t" \
      "$root/tests/fuzz/corpus/$t" >"$out/log_$t" 2>&1; then
    echo "fuzz: fuzz_$t FAILED:"
    tail -n 60 "$out/log_$t"
    for a in "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*; do
      [ -e "$a" ] && { echo "input $a:"; od -A d -t x1 "$a" | head -20; }
    done
    status=1
  else
    grep -E 'stat::number_of_executed_runs|cov:' "$out/log_$t" | tail -n 2
  fi
done
exit $status
