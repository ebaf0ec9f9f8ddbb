# Cross toolchain: 64-bit ARM (Debian arm64) with Debian 12's g++-aarch64-linux-gnu.
#   scripts/make-sysroot.sh arm64
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake
# See docs/cross-compiling.md.
set(EDGEPIPE_CROSS_TRIPLE aarch64-linux-gnu)
set(EDGEPIPE_CROSS_ARCH arm64)
set(EDGEPIPE_QEMU qemu-aarch64)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
