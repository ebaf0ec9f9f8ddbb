# Sources compiled with -Os: code that runs at start, on SIGHUP, on a timer or per upload, never
# per reading. Hot paths (validator, ingest, buffer, codecs, encoders, protocol decoders) stay -O2.
if(EDGEPIPE_SANITIZE OR NOT CMAKE_BUILD_TYPE MATCHES "Rel")
  return()
endif()
file(GLOB _ep_cold_agent CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/agent/src/config*.cpp)
list(APPEND _ep_cold_agent
  ${PROJECT_SOURCE_DIR}/agent/src/main.cpp
  ${PROJECT_SOURCE_DIR}/agent/src/status_command.cpp
  ${PROJECT_SOURCE_DIR}/agent/src/telemetry.cpp
  ${PROJECT_SOURCE_DIR}/agent/src/metrics.cpp
  ${PROJECT_SOURCE_DIR}/agent/src/quality_report.cpp
  ${PROJECT_SOURCE_DIR}/agent/src/agent_quality.cpp
  ${PROJECT_SOURCE_DIR}/agent/src/agent_service.cpp
  ${PROJECT_SOURCE_DIR}/agent/src/notify.cpp
  ${PROJECT_SOURCE_DIR}/agent/src/reload.cpp
  ${PROJECT_SOURCE_DIR}/agent/src/factories.cpp)
set_source_files_properties(${_ep_cold_agent} TARGET_DIRECTORY edgepipe_agent edgepipe
  PROPERTIES COMPILE_OPTIONS "-Os")
set_source_files_properties(
  ${PROJECT_SOURCE_DIR}/uploader/src/credentials.cpp
  ${PROJECT_SOURCE_DIR}/uploader/src/s3_errors.cpp
  ${PROJECT_SOURCE_DIR}/uploader/src/schedule.cpp
  ${PROJECT_SOURCE_DIR}/uploader/src/s3_sink.cpp
  ${PROJECT_SOURCE_DIR}/uploader/src/sigv4.cpp
  ${PROJECT_SOURCE_DIR}/uploader/src/curl_transport.cpp
  ${PROJECT_SOURCE_DIR}/uploader/src/uploader.cpp
  TARGET_DIRECTORY edgepipe_uploader PROPERTIES COMPILE_OPTIONS "-Os")
set_source_files_properties(${PROJECT_SOURCE_DIR}/firmware-bridge/src/sysfs.cpp
  TARGET_DIRECTORY fb_sysfs PROPERTIES COMPILE_OPTIONS "-Os")
set_source_files_properties(${PROJECT_SOURCE_DIR}/firmware-bridge/src/mqtt_session.cpp
  TARGET_DIRECTORY fb_mqtt PROPERTIES COMPILE_OPTIONS "-Os")
set_source_files_properties(${PROJECT_SOURCE_DIR}/buffer/src/store_open.cpp
  ${PROJECT_SOURCE_DIR}/buffer/src/store_stats.cpp
  TARGET_DIRECTORY edgepipe_buffer PROPERTIES COMPILE_OPTIONS "-Os")
