# Sources compiled with -Os: code that runs at start, on SIGHUP, on a timer or per upload, never
# per reading. Hot paths (validator, ingest, buffer commits, codecs, encoders, protocol decoders)
# stay -O2.
if(EDGEPIPE_SANITIZE OR NOT CMAKE_BUILD_TYPE MATCHES "Rel")
  return()
endif()

# edgepipe_size_optimize(<target> <source paths relative to the project root>...)
function(edgepipe_size_optimize target)
  list(TRANSFORM ARGN PREPEND "${PROJECT_SOURCE_DIR}/")
  set_source_files_properties(${ARGN} TARGET_DIRECTORY ${target} PROPERTIES COMPILE_OPTIONS "-Os")
endfunction()

file(GLOB _ep_config_sources CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/agent/src/config*.cpp)
edgepipe_size_optimize(edgepipe_agent ${_ep_config_sources}
  agent/src/telemetry.cpp agent/src/metrics.cpp agent/src/quality_report.cpp agent/src/agent_quality.cpp
  agent/src/agent_service.cpp agent/src/notify.cpp agent/src/reload.cpp agent/src/factories.cpp
  # The Agent's start, event loop (timers, signals) and shutdown; Ingest, which every message
  # goes through, is in ingest.cpp (-O2).
  agent/src/agent.cpp
  # The clock guard's hold file: written only while the system clock is unsynchronised (boot
  # without an RTC), released once; the per-message check stays in ingest_clock.cpp (-O2).
  agent/src/clock_sync.cpp)
edgepipe_size_optimize(edgepipe agent/src/main.cpp agent/src/status_command.cpp)
edgepipe_size_optimize(edgepipe_uploader
  uploader/src/credentials.cpp uploader/src/s3_errors.cpp uploader/src/schedule.cpp uploader/src/s3_sink.cpp
  uploader/src/sigv4.cpp uploader/src/curl_transport.cpp uploader/src/uploader.cpp
  uploader/src/object.cpp uploader/src/file_sink.cpp)
edgepipe_size_optimize(fb_mqtt firmware-bridge/src/mqtt_session.cpp)
edgepipe_size_optimize(fb_sysfs firmware-bridge/src/sysfs.cpp)
# store_journal.cpp: the replay runs at open; a wait costs a write() syscall either way.
edgepipe_size_optimize(edgepipe_buffer buffer/src/store_open.cpp buffer/src/store_stats.cpp buffer/src/store_journal.cpp)
# Logging is rate-limited; files are read at start and on reload.
edgepipe_size_optimize(edgepipe_core core/src/log.cpp core/src/file_util.cpp)
