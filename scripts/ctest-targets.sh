#!/usr/bin/env bash
# Prints the target names of the test executables that ctest would run for a label regex, one per
# line, so that a build can compile only what a stage runs (cmake --build ... --target ...).
# Works on a tree that is configured but not built. Helpers a test runs (the agent binary, crash
# children, the MCU simulator) come along through the add_dependencies() of tests/CMakeLists.txt.
#   usage: scripts/ctest-targets.sh BUILD_DIR LABEL_REGEX
set -euo pipefail
BUILD_DIR=${1:?usage: ctest-targets.sh BUILD_DIR LABEL_REGEX}
LABELS=${2:?usage: ctest-targets.sh BUILD_DIR LABEL_REGEX}
MANIFEST=$BUILD_DIR/tests/test-targets.txt  # the suites' names (= their targets), by tests/CMakeLists.txt
[ -f "$MANIFEST" ] || { echo "ctest-targets: $MANIFEST is missing: configure $BUILD_DIR with tests first" >&2; exit 1; }
# ctest selects the tests (the same label matching as `ctest -L`); the manifest names their targets.
(cd "$BUILD_DIR" && ctest -N -L "$LABELS" --show-only=json-v1) | python3 -c '
import sys, json
suites = set(open(sys.argv[1]).read().split())
names = [t["name"] for t in json.load(sys.stdin)["tests"]]
for name in names:
    if name not in suites:
        sys.exit("ctest-targets: test %s (labels %s) is not a CppUTest suite of tests/CMakeLists.txt: "
                 "build its dependencies another way" % (name, sys.argv[2]))
if not names:
    sys.exit("ctest-targets: no test matches the labels %r" % sys.argv[2])
print("\n".join(names))' "$MANIFEST" "$LABELS"
