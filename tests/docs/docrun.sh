#!/bin/sh
# One docs page re-run and checked (docrun.py; the notation is in
# docs/README.md, "How the docs are checked").  The pages run
# build/cli/uksim from the top of the tree, so the build must be there.
#   docrun.sh PAGE
set -u
. "$(dirname "$0")/../skip.sh"
[ "${UKSIM_UNDER_VALGRIND:-0}" = 1 ] && skip "under valgrind (the pages boot real-time machines; each command runs natively)"
root=${UKSIM_SOURCE_ROOT:?} build=${UKSIM_BUILD_ROOT:?}
if [ "$(realpath "$build")" != "$(realpath -m "$root/build")" ]; then
  echo "docrun.sh: the pages run build/cli/uksim from $root, but this" \
    "build is $build; configure it as $root/build to check the docs"
  exit 1
fi
exec python3 "$(dirname "$0")/docrun.py" --root "$root" "$@"
