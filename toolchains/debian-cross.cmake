# Shared part of the Debian cross toolchain files (aarch64-linux-gnu.cmake, arm-linux-gnueabihf.cmake).
# Do not use directly: those files set EDGEPIPE_CROSS_TRIPLE, EDGEPIPE_CROSS_ARCH and the processor.
#
# The sysroot comes from -DEDGEPIPE_SYSROOT=DIR, else $EDGEPIPE_SYSROOT, else
# .cache/sysroot-<debian arch> in the source tree (where scripts/make-sysroot.sh puts it).
# Never a hard-coded absolute path.

# try_compile() re-reads this file in a fresh project: pass our variables along.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EDGEPIPE_SYSROOT)

if(NOT EDGEPIPE_SYSROOT)
  if(DEFINED ENV{EDGEPIPE_SYSROOT} AND NOT "$ENV{EDGEPIPE_SYSROOT}" STREQUAL "")
    set(EDGEPIPE_SYSROOT "$ENV{EDGEPIPE_SYSROOT}")
  else()
    get_filename_component(EDGEPIPE_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../.cache/sysroot-${EDGEPIPE_CROSS_ARCH}" ABSOLUTE)
  endif()
endif()
if(NOT EXISTS "${EDGEPIPE_SYSROOT}/usr/include")
  message(FATAL_ERROR "no ${EDGEPIPE_CROSS_ARCH} sysroot at ${EDGEPIPE_SYSROOT}: run "
                      "`scripts/make-sysroot.sh ${EDGEPIPE_CROSS_ARCH}` or pass -DEDGEPIPE_SYSROOT=DIR "
                      "(see docs/cross-compiling.md)")
endif()
set(EDGEPIPE_SYSROOT "${EDGEPIPE_SYSROOT}" CACHE PATH "Sysroot for ${EDGEPIPE_CROSS_TRIPLE}")

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${EDGEPIPE_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${EDGEPIPE_CROSS_TRIPLE}-g++)
set(CMAKE_STRIP ${EDGEPIPE_CROSS_TRIPLE}-strip CACHE FILEPATH "strip for the target")
set(CMAKE_SYSROOT "${EDGEPIPE_SYSROOT}")
# Debian multiarch: libraries, headers and CMake package configs under */<triple>/.
set(CMAKE_LIBRARY_ARCHITECTURE ${EDGEPIPE_CROSS_TRIPLE})

# Programs from the host, everything else only from the sysroot.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The host's pkg-config sees only the target's .pc files, with sysroot-prefixed paths.
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${CMAKE_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR} "${CMAKE_SYSROOT}/usr/lib/${EDGEPIPE_CROSS_TRIPLE}/pkgconfig:${CMAKE_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# ctest runs target executables through qemu-user (binfmt_misc is not required). The sysroot
# doubles as the emulator's library root: it holds the target's dynamic loader and shared libs.
set(CMAKE_CROSSCOMPILING_EMULATOR ${EDGEPIPE_QEMU} -L "${CMAKE_SYSROOT}")

# Debian package architecture (CPack uses it for the .deb file name and control file).
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${EDGEPIPE_CROSS_ARCH} CACHE STRING "Debian architecture of the package")
