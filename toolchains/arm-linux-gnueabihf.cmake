# Cross toolchain: 32-bit ARM hard-float (Debian armhf, ARMv7) with Debian 12's g++-arm-linux-gnueabihf.
#   scripts/make-sysroot.sh armhf
#   cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-linux-gnueabihf.cmake
# See docs/cross-compiling.md. GCC's "parameter passing ... changed in GCC 7.1" ABI notes are
# silenced on project targets by edgepipe_target_defaults (-Wno-psabi).
set(EDGEPIPE_CROSS_TRIPLE arm-linux-gnueabihf)
set(EDGEPIPE_CROSS_ARCH armhf)
set(EDGEPIPE_QEMU qemu-arm)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
