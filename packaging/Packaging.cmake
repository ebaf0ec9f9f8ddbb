# Install layout and Debian packages (CPack). docs/operations.md ("Installing") and
# docs/cross-compiling.md ("Packages") describe how they are built and used.
#
#   Debian package:  cmake -S . -B build-pkg -DCMAKE_INSTALL_PREFIX=/usr && cmake --build build-pkg --target edgepipe
#                    (cd build-pkg && cpack -G DEB)          -> edgepipe_<version>-1_<arch>.deb
#   Plain install:   cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/opt/edgepipe && cmake --install build [--strip]
#
# With the prefix /usr the configuration goes to /etc/edgepipe and the unit to /lib/systemd/system
# (Debian 12's locations); with any other prefix both stay under the prefix (etc/edgepipe,
# lib/systemd/system) and the installed unit's paths are rewritten to match.
include(GNUInstallDirs)

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_ep_confdir "/etc/edgepipe")
  set(_ep_unitdir "/lib/systemd/system")
else()
  set(_ep_confdir "${CMAKE_INSTALL_SYSCONFDIR}/edgepipe")
  set(_ep_unitdir "lib/systemd/system")
endif()
# Follow the prefix unless given explicitly (-DEDGEPIPE_INSTALL_CONFDIR=..., -DEDGEPIPE_INSTALL_UNITDIR=...).
if(NOT DEFINED EDGEPIPE_INSTALL_CONFDIR)
  set(EDGEPIPE_INSTALL_CONFDIR "${_ep_confdir}")
endif()
if(NOT DEFINED EDGEPIPE_INSTALL_UNITDIR)
  set(EDGEPIPE_INSTALL_UNITDIR "${_ep_unitdir}")
endif()

function(_ep_full out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()
_ep_full(_ep_confdir_full "${EDGEPIPE_INSTALL_CONFDIR}")

# The unit in the tree is written for the Debian layout; rewrite its paths for other prefixes.
file(READ "${PROJECT_SOURCE_DIR}/packaging/edgepipe.service" _ep_unit)
string(REPLACE "/usr/bin/edgepipe" "${CMAKE_INSTALL_FULL_BINDIR}/edgepipe" _ep_unit "${_ep_unit}")
string(REPLACE "/etc/edgepipe" "${_ep_confdir_full}" _ep_unit "${_ep_unit}")
string(REPLACE "file:///usr/share/doc/edgepipe" "file://${CMAKE_INSTALL_FULL_DOCDIR}" _ep_unit "${_ep_unit}")
file(WRITE "${CMAKE_BINARY_DIR}/packaging/edgepipe.service" "${_ep_unit}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/packaging/edgepipe.service")

# The binary is installed by agent/CMakeLists.txt (bin/). Everything else:
install(FILES "${CMAKE_BINARY_DIR}/packaging/edgepipe.service" DESTINATION "${EDGEPIPE_INSTALL_UNITDIR}")
install(FILES "${PROJECT_SOURCE_DIR}/examples/field.toml" DESTINATION "${EDGEPIPE_INSTALL_CONFDIR}"
        RENAME edgepipe.toml PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# Secrets for LoadCredential=: root-only (0700) so a secret written with a loose umask is still
# private; the unit refuses to start when the directory is missing.
install(DIRECTORY DESTINATION "${EDGEPIPE_INSTALL_CONFDIR}/credentials"
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
# Deliberate choices lintian would flag: the 0700 directory above, and no ITP bug to close (this
# is not a Debian archive upload).
file(WRITE "${CMAKE_BINARY_DIR}/packaging/lintian-overrides"
     "edgepipe: initial-upload-closes-no-bugs\nedgepipe: non-standard-dir-perm 0700 != 0755 [etc/edgepipe/credentials/]\n")
install(FILES "${CMAKE_BINARY_DIR}/packaging/lintian-overrides" DESTINATION "${CMAKE_INSTALL_DATADIR}/lintian/overrides"
        RENAME edgepipe)
# Immediate binding and read-only relocations (Debian's hardening=+bindnow, lintian hardening-no-bindnow).
target_link_options(edgepipe PRIVATE -Wl,-z,relro -Wl,-z,now)
install(FILES docs/operations.md docs/configuration.md docs/output-format.md docs/durability.md
        DESTINATION "${CMAKE_INSTALL_DOCDIR}")

# Man page and Debian changelog, gzipped as Debian wants them (-n: no timestamp, reproducible).
set(EDGEPIPE_DEB_VERSION "${PROJECT_VERSION}-1")
set(CPACK_PACKAGE_CONTACT "edgepipe maintainers <edgepipe@example.com>")
# The changelog date is the last commit's (stable across reconfigures; reproducible packages).
execute_process(COMMAND git -C "${PROJECT_SOURCE_DIR}" log -1 --format=%cD OUTPUT_VARIABLE EDGEPIPE_CHANGELOG_DATE
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT EDGEPIPE_CHANGELOG_DATE)
  string(TIMESTAMP EDGEPIPE_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
endif()
configure_file("${PROJECT_SOURCE_DIR}/packaging/debian/changelog.in" "${CMAKE_BINARY_DIR}/packaging/changelog.Debian" @ONLY)
find_program(GZIP_EXECUTABLE gzip REQUIRED)
add_custom_command(
  OUTPUT "${CMAKE_BINARY_DIR}/packaging/edgepipe.1.gz" "${CMAKE_BINARY_DIR}/packaging/changelog.Debian.gz"
  COMMAND ${GZIP_EXECUTABLE} -9n -c "${PROJECT_SOURCE_DIR}/packaging/edgepipe.1" > "${CMAKE_BINARY_DIR}/packaging/edgepipe.1.gz"
  COMMAND ${GZIP_EXECUTABLE} -9n -c "${CMAKE_BINARY_DIR}/packaging/changelog.Debian" > "${CMAKE_BINARY_DIR}/packaging/changelog.Debian.gz"
  DEPENDS "${PROJECT_SOURCE_DIR}/packaging/edgepipe.1" "${CMAKE_BINARY_DIR}/packaging/changelog.Debian"
  VERBATIM)
add_custom_target(edgepipe_package_files ALL DEPENDS "${CMAKE_BINARY_DIR}/packaging/edgepipe.1.gz")
install(FILES "${CMAKE_BINARY_DIR}/packaging/edgepipe.1.gz" DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
install(FILES "${CMAKE_BINARY_DIR}/packaging/changelog.Debian.gz" "${PROJECT_SOURCE_DIR}/packaging/debian/copyright"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}")

# ---- CPack: one .deb per architecture ----
set(CPACK_PACKAGE_NAME edgepipe)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "edgepipe")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "sensor data agent for edge gateways")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.com/edgepipe")
# Extended description (CPack indents it under the summary line; an empty line separates paragraphs).
set(CPACK_PACKAGE_DESCRIPTION "edgepipe collects sensor readings from microcontroller firmware over a serial
link, from MQTT topics and from Linux IIO/hwmon sysfs, validates them, keeps
them durably in a compressed SQLite buffer and uploads batches to
S3-compatible object storage (or a local outbox) in a Hive layout that
DuckDB, Spark and Athena read directly.

It runs as a hardened systemd service with a watchdog, reloads its
configuration on SIGHUP and exposes Prometheus metrics on localhost.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${PROJECT_SOURCE_DIR}/packaging/debian/conffiles;${PROJECT_SOURCE_DIR}/packaging/debian/postinst;${PROJECT_SOURCE_DIR}/packaging/debian/prerm;${PROJECT_SOURCE_DIR}/packaging/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Depends: shared-library dependencies from the binary's NEEDED entries. Natively dpkg-shlibdeps
# computes them; for a cross build scripts/deb-depends.sh derives them from the sysroot's shlibs
# files and passes -DEDGEPIPE_DEB_DEPENDS=... (dpkg-shlibdeps cannot see a foreign sysroot).
set(EDGEPIPE_DEB_DEPENDS "" CACHE STRING "Depends: of the .deb (empty: dpkg-shlibdeps)")
if(EDGEPIPE_DEB_DEPENDS)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "${EDGEPIPE_DEB_DEPENDS}")
else()
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
if(NOT CPACK_DEBIAN_PACKAGE_ARCHITECTURE AND NOT CMAKE_CROSSCOMPILING)
  find_program(DPKG_EXECUTABLE dpkg)
  if(DPKG_EXECUTABLE)
    execute_process(COMMAND ${DPKG_EXECUTABLE} --print-architecture OUTPUT_VARIABLE CPACK_DEBIAN_PACKAGE_ARCHITECTURE
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
  endif()
endif()
set(CPACK_GENERATOR "DEB")  # a plain tarball: cmake --install (see the top of this file)
set(CPACK_SOURCE_GENERATOR "")
include(CPack)
