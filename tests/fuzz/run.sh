#!/bin/sh
# Builds the libFuzzer targets with clang (outside meson) and runs each
# from its corpus, tests/fuzz/corpus/<target>/:
#   decode   the 9P codec                    (fuzz_decode.c)
#   srv      the 9P server                   (fuzz_srv.c)
#   icat     the ICA transport under a 9P OS server's requests
#            (fuzz_icat.c)
#   scn      the scenario parser, trace reader and timeline (fuzz_scn.c;
#            the shipped scenarios are seeds too)
#   client   the blocking 9P client's reading of answers (fuzz_client.c)
#   aclient  the asynchronous client and the stream transport under it
#            (fuzz_aclient.c)
#   kcall    the kernel's call decoder: kabi_recvmsg and kern__dispatch
#            on a kernel whose loop never runs (fuzz_kcall.c)
#   kmnt     the mount driver reading 9P servers' answers (kmnt_msg.c:
#            fuzz_kmnt.c)
#   kimage   a kernel update's version-neutral images, built from hostile
#            bytes and extracted from torn regions (fuzz_kimage.c)
# Exits non-zero if a target crashes, leaks, times out or fails to build.
#
#   run.sh [TARGET...]           the CI run: 2 x FUZZ_SECONDS in all
#                                (default 45; check.sh sets 30), shared
#                                evenly by the targets
#   run.sh --long [SECONDS]      each target SECONDS (default 3600), one
#                                after the other
#   run.sh --update-corpus ...   after the run, merges what it found into
#                                tests/fuzz/corpus/<target>/, minimized
#                                (libFuzzer -merge=1: an input stays if
#                                it covers what the hand-made seeds and
#                                the others do not); commit that.  With
#                                a longer run: --long 600 --update-corpus
#   run.sh --replay TARGET FILE  builds TARGET and runs it once on FILE
#
# Every run ends with a line per target: executions, executions per second,
# coverage (edges, features) and corpus (inputs/bytes) at the end.  An
# input that crashes, leaks or times out is copied whole to $FUZZ_ARTIFACTS
# (default fuzz-artifacts/ at the top of the tree, which git ignores) as
# <target>-crash-<sha1> and so on, and the command that replays it is
# printed; tests/fuzz/make_corpus.py writes the hand-made seeds.
# Needs: clang, libclang-rt-<ver>-dev (libFuzzer + sanitizers), protobuf-c
#        (protoc-c), libsodium-dev, libuv1-dev, libjansson-dev, libleveldb-dev
#        (the kernel's disk, in fuzz_kcall).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
all="decode srv icat scn client aclient kcall kmnt kimage"
long="" update="" replay=""
while [ $# -gt 0 ]; do
  case $1 in
  --long)
    long=3600
    case ${2:-} in [0-9]*) long=$2; shift ;; esac ;;
  --update-corpus) update=1 ;;
  --replay)
    [ $# -ge 3 ] || { echo "usage: run.sh --replay TARGET FILE" >&2; exit 2; }
    replay=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
    set -- "$2"
    break ;;
  -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  *) break ;;
  esac
  shift
done
targets=${*:-$all}
for t in $targets; do
  case " $all " in *" ${t#fuzz_} "*) ;; *)
    echo "run.sh: no target $t (targets: $all)" >&2; exit 2 ;;
  esac
done
ntargets=$(echo $targets | wc -w)
if [ -n "$long" ]; then
  secs=$long
else
  # The total stays 2 x FUZZ_SECONDS however many targets there are.
  secs=$(( 2 * ${FUZZ_SECONDS:-45} / ntargets ))
fi
[ "$secs" -ge 1 ] || secs=1
artifacts=${FUZZ_ARTIFACTS:-$root/fuzz-artifacts}
cc=${CC:-clang}
out=$(mktemp -d "${TMPDIR:-/tmp}/uksim-fuzz.XXXXXX")
trap 'rm -rf "$out"' EXIT

# The base every part links (lib/meson.build base_dep), where it exists.
base=""
for f in xalloc.c num.c; do
  [ -f "$root/lib/$f" ] && base="$base $root/lib/$f"
done
net9p_srcs=$base
for f in addr.c auth.c error.c fcall.c fid.c fmt.c memfs.c srv.c util.c \
         client.c aclient.c stream.c icat.c hostfs.c; do
  net9p_srcs="$net9p_srcs $root/net9p/$f"
done
scn_srcs=$base
for f in scn.c scn_lex.c scn_action.c scn_count.c scn_mig.c trace.c trace_read.c \
         trace_pb.c timeline.c timeline_overview.c; do
  scn_srcs="$scn_srcs $root/scenarios/$f"
done
# The kernel library is what sim-kernel/ holds, and the ABI's packet I/O,
# with what it links: vfs/ (namespaces) and net9p (the mount driver's 9P).
# Not the migration server (its own program, seed 004) nor its wire; the
# version-neutral images (kimage.c, kimage_cache.c) compile twice, once per
# kernel-data layout (kimg_v1_*, kimg_v2_*), as sim-kernel/meson.build
# builds them.
kern_srcs="$net9p_srcs $root/lib/kabi_io.c $out/control.pb-c.c"
kern_srcs="$kern_srcs $out/node.pb-c.c $out/kimage.pb-c.c"
for f in "$root"/sim-kernel/*.c "$root"/vfs/*.c; do
  case $(basename "$f") in mig*.c) continue ;; esac
  kern_srcs="$kern_srcs $f"
done
# The mount driver's reading of server answers (sim-kernel/kmnt_msg.c).
kmnt_srcs="$net9p_srcs $root/sim-kernel/kmnt_msg.c"
# The images alone, layout 1 here and v2 by kimage_v2 below.
kimage_srcs="$base $out/kimage.pb-c.c $root/sim-kernel/kimage.c
             $root/sim-kernel/kimage_cache.c"
flags="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I$root/include -I$root/lib
       -I$root/net9p -I$root/tests/net9p -I$root/scenarios
       -I$root/sim-kernel -I$root/vfs -I$out
       $(pkg-config --cflags libuv libsodium jansson libprotobuf-c)"

# The parts a target links: its sources, flags and libraries.
part_of() {
  case $1 in
  decode | srv | icat | client | aclient) echo net9p ;;
  *) echo "$1" ;;
  esac
}
part_srcs() {
  case $1 in
  net9p) echo "$net9p_srcs" ;;
  scn) echo "$scn_srcs" ;;
  kcall) echo "$kern_srcs" ;;
  kmnt) echo "$kmnt_srcs" ;;
  kimage) echo "$kimage_srcs" ;;
  esac
}
part_libs() {
  case $1 in
  net9p) pkg-config --libs libsodium libuv ;;
  scn) pkg-config --libs jansson libprotobuf-c ;;
  kcall) echo "$(pkg-config --libs libuv libprotobuf-c libsodium) -lleveldb" ;;
  kmnt) pkg-config --libs libsodium libuv ;;
  kimage) pkg-config --libs libprotobuf-c ;;
  esac
}
# The kernel scans its tables whole (4096 slots) at every exit; traced
# comparisons there cost two thirds of the time for nothing the input
# decides, so fuzz_kcall goes by coverage alone.
part_flags() {
  [ "$1" = kcall ] && echo -fno-sanitize-coverage=trace-cmp || true
}

# Generated sources: the trace reader also reads the binary (protobuf-c)
# form; the kernel speaks protobuf-c to its machine and wants its paths.
protoc-c --proto_path="$root/scenarios" --c_out="$out" trace.proto
for proto in control node kimage; do
  protoc-c --proto_path="$root/sim-kernel" --c_out="$out" $proto.proto
done
for m in $(find "$root" -name meson.build -not -path "$root/build*"); do
  sed -n "s/.*set_quoted('\([A-Z_0-9]*\)'.*/#define \1 \"\"/p" "$m"
done >"$out/uksim_paths.h"
scn_srcs="$scn_srcs $out/trace.pb-c.c"

# Each part's sources compile once, as many at a time as there are cpus;
# then each target links its part.
parts=""
for t in $targets; do
  p=$(part_of "${t#fuzz_}")
  case " $parts " in *" $p "*) ;; *) parts="$parts $p" ;; esac
done
# The layout-v2 build of the version-neutral images (kimage.c, the
# process and kernel parts; kimage_cache.c, the file cache) into dir.
kimage_v2() {
  for f in kimage kimage_cache; do
    $cc $flags -DUK_KDATA_V2 -c "$root/sim-kernel/$f.c" -o "$1/${f}_v2.o" ||
      return 1
  done
}
status=0
export cc flags
for p in $parts; do
  echo "fuzz: compiling $p"
  mkdir -p "$out/o_$p"
  # shellcheck disable=SC2046
  if ! printf '%s\n' $(part_srcs "$p") |
      xargs -P "$(nproc)" -I{} sh -c '$cc $flags $0 -c "$1" -o "$2/$(basename "$1" .c).o"' \
        "$(part_flags "$p")" {} "$out/o_$p" >"$out/build_$p" 2>&1 ||
    { { [ "$p" = kcall ] || [ "$p" = kimage ]; } &&
        ! kimage_v2 "$out/o_$p" >>"$out/build_$p" 2>&1; }; then
    echo "fuzz: $p failed to compile:"
    tail -n 30 "$out/build_$p"
    status=1
  fi
done
[ $status -eq 0 ] || exit $status
for t in $targets; do
  t=${t#fuzz_} p=$(part_of "${t#fuzz_}")
  echo "fuzz: building fuzz_$t"
  # shellcheck disable=SC2046,SC2086
  if ! $cc $flags $(part_flags "$p") "$root/tests/fuzz/fuzz_$t.c" \
      "$out/o_$p"/*.o $(part_libs "$p") -lpthread -o "$out/fuzz_$t" \
      >"$out/build_$t" 2>&1; then
    echo "fuzz: fuzz_$t failed to build:"
    tail -n 30 "$out/build_$t"
    status=1
  fi
done
[ $status -eq 0 ] || exit $status

if [ -n "$replay" ]; then
  t=${targets#fuzz_}
  echo "fuzz: replaying $replay on fuzz_$t"
  TMPDIR=$out "$out/fuzz_$t" -rss_limit_mb=2048 -timeout=10 "$replay" ||
    exit 1
  exit 0
fi

# What a failed run leaves: each input whole in $artifacts, the start of
# it in the log, and how to replay it.
keep_artifacts() {
  mkdir -p "$artifacts"
  for a in "$out/art_$1"/*; do
    [ -e "$a" ] || continue
    k="$artifacts/fuzz_$1-$(basename "$a")"
    cp "$a" "$k"
    echo "fuzz: input kept whole in $k ($(wc -c <"$k") bytes); it begins:"
    od -A d -t x1 "$k" | head -n 8
    echo "fuzz: replay it (from the top of the tree):" \
         "sh tests/fuzz/run.sh --replay $1 ${k#"$root"/}"
  done
}

# One summary line from a libFuzzer log.
summary() {
  awk -v t="fuzz_$1" -v r="$2" '
    /stat::number_of_executed_units/ { n = $2 }
    /stat::average_exec_per_sec/ { s = $2 }
    / cov: / {
      for (i = 1; i < NF; i++) {
        if ($i == "cov:") cov = $(i + 1)
        if ($i == "ft:") ft = $(i + 1)
        if ($i == "corp:") corp = $(i + 1)
      }
    }
    END { printf "fuzz: %-13s %-6s %12s %8s %6s %7s %14s\n", t, r,
          n ? n : "-", s ? s : "-", cov ? cov : "-", ft ? ft : "-",
          corp ? corp : "-" }' "$out/log_$1"
}

results=""
for t in $targets; do
  t=${t#fuzz_}
  mkdir -p "$out/corpus_$t" "$out/art_$t"
  # fuzz_scn's seeds are also the shipped scenarios as they are now.
  [ "$t" = scn ] && cp "$root"/scenarios/*.scn "$out/corpus_$t/"
  echo "fuzz: running fuzz_$t for ${secs}s"
  if TMPDIR=$out "$out/fuzz_$t" -max_total_time="$secs" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/art_$t/" "$out/corpus_$t" \
      "$root/tests/fuzz/corpus/$t" >"$out/log_$t" 2>&1; then
    results="$results $t:ok"
  else
    echo "fuzz: fuzz_$t FAILED:"
    # The report, not the progress lines before it.
    report=$(awk '/^==[0-9]+==|ERROR: |runtime error:/ { p = 1 } p' \
      "$out/log_$t" | head -n 60)
    if [ -n "$report" ]; then
      printf '%s\n' "$report"
    else
      tail -n 30 "$out/log_$t"
    fi
    keep_artifacts "$t"
    results="$results $t:FAILED"
    status=1
  fi
done

if [ -n "$update" ]; then
  for r in $results; do
    t=${r%%:*}
    [ "${r#*:}" = ok ] || { echo "fuzz: corpus/$t not updated"; continue; }
    # The hand-made seeds (any name but a SHA-1's) stay as they are, and
    # so what they cover is not copied again; nor is what the shipped
    # scenarios cover (seeds of fuzz_scn anyway, removed after).
    mkdir -p "$out/merged_$t"
    for f in "$root/tests/fuzz/corpus/$t"/*; do
      [ -e "$f" ] || continue
      n=$(basename "$f")
      case $n in *[!0-9a-f]*) cp "$f" "$out/merged_$t/" ;; *)
        [ ${#n} -eq 40 ] || cp "$f" "$out/merged_$t/" ;;
      esac
    done
    [ "$t" = scn ] && cp "$root"/scenarios/*.scn "$out/merged_$t/"
    if ! "$out/fuzz_$t" -merge=1 -timeout=10 -rss_limit_mb=2048 \
        "$out/merged_$t" "$root/tests/fuzz/corpus/$t" "$out/corpus_$t" \
        >"$out/merge_$t" 2>&1; then
      echo "fuzz: merging corpus/$t failed:"
      tail -n 20 "$out/merge_$t"
      status=1
      continue
    fi
    [ "$t" = scn ] && (cd "$root/scenarios" && for f in *.scn; do
      rm -f "$out/merged_$t/$f"; done)
    rm -f "$root/tests/fuzz/corpus/$t"/*
    cp "$out/merged_$t"/* "$root/tests/fuzz/corpus/$t/"
    echo "fuzz: corpus/$t: $(ls "$root/tests/fuzz/corpus/$t" | wc -l) inputs," \
         "$(cat "$root/tests/fuzz/corpus/$t"/* | wc -c) bytes"
  done
fi

printf "fuzz: %-13s %-6s %12s %8s %6s %7s %14s\n" target result runs exec/s \
  cov ft corpus
for r in $results; do
  summary "${r%%:*}" "${r#*:}"
done
exit $status
