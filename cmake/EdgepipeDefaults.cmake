# Per-target defaults: warnings as errors on project code, optional sanitizers.
option(EDGEPIPE_WERROR "Treat warnings as errors on project code" ON)
option(EDGEPIPE_SANITIZE "Build everything with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)

if(EDGEPIPE_SANITIZE)
  # float-cast-overflow: GCC leaves it out of "undefined" (clang, in the fuzz build, does not).
  add_compile_options(-fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined,float-cast-overflow)
  add_link_options(-fsanitize=address,undefined,float-cast-overflow)
  # CppUTest's own new/delete overloads hide heap overflows from ASan (see docs/development.md).
  add_compile_definitions(CPPUTEST_MEM_LEAK_DETECTION_DISABLED EDGEPIPE_SANITIZE=1)
endif()

# Section garbage collection: code the binary never calls (unused parts of our libraries and of
# the header-only ones) is dropped at link time. Keeps the aarch64 binary under its 2 MiB target.
option(EDGEPIPE_GC_SECTIONS "Link with --gc-sections (per-function sections)" ON)
if(EDGEPIPE_GC_SECTIONS AND NOT EDGEPIPE_SANITIZE)
  add_compile_options(-ffunction-sections -fdata-sections)
  add_link_options(-Wl,--gc-sections)
endif()

function(edgepipe_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow=local -Wnon-virtual-dtor
    $<$<BOOL:${EDGEPIPE_WERROR}>:-Werror>)
  if(CMAKE_CROSSCOMPILING AND CMAKE_SYSTEM_PROCESSOR MATCHES "arm")
    target_compile_options(${target} PRIVATE -Wno-psabi)
  endif()
endfunction()
