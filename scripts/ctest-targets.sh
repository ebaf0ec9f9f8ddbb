#!/usr/bin/env bash
# Prints the target names of the test executables that ctest would run for a label regex, one per
# line, so that a build can compile only what a stage runs (cmake --build ... --target ...).
# Helpers a test runs (the agent binary, crash children, the MCU simulator) come along through
# the add_dependencies() of tests/CMakeLists.txt.
#   usage: scripts/ctest-targets.sh BUILD_DIR LABEL_REGEX      (the build tree must be configured)
set -euo pipefail
BUILD_DIR=${1:?usage: ctest-targets.sh BUILD_DIR LABEL_REGEX}
LABELS=${2:?usage: ctest-targets.sh BUILD_DIR LABEL_REGEX}
(cd "$BUILD_DIR" && ctest -N -L "$LABELS" --show-only=json-v1) | python3 -c '
import json, os, sys
seen = []
for t in json.load(sys.stdin)["tests"]:
    cmd = t.get("command") or []
    # Natively the command is [exe, args...]; with a cross emulator [qemu, -L, sysroot, exe, ...].
    exe = next((c for c in cmd if os.path.basename(os.path.dirname(c)) == "tests"), None)
    if exe is None:
        sys.exit("ctest-targets: test %s does not run an executable of tests/: %s" % (t["name"], cmd))
    if os.path.basename(exe) not in seen:
        seen.append(os.path.basename(exe))
if not seen:
    sys.exit("ctest-targets: no test matches the labels %r" % sys.argv[1])
print("\n".join(seen))' "$LABELS"
