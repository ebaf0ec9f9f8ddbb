# Issue 7: data-quality rules, transforms, the unsynchronised clock, the real data sets
# (docs/data-quality.md). Included from tests/CMakeLists.txt; paths are relative to tests/.
edgepipe_add_test(validation_test
  SOURCES validation/vtest.cpp validation/validation_config_test.cpp validation/rules_test.cpp
          validation/transform_test.cpp validation/property_test.cpp validation/clock_test.cpp
          validation/forget_test.cpp validation/report_test.cpp
  LIBS edgepipe_agent nlohmann_json::nlohmann_json
  LABELS unit validation)
target_include_directories(validation_test PRIVATE ${PROJECT_SOURCE_DIR}/agent/src)

# The shared real data sets (../shared/data) and the built binary.
edgepipe_add_test(validation_data_test
  SOURCES validation/vtest.cpp validation/datasets.cpp validation/datasets_test.cpp
          validation/validation_e2e_test.cpp
  LIBS edgepipe_agent nlohmann_json::nlohmann_json
  LABELS validation
  TIMEOUT 300)
add_dependencies(validation_data_test edgepipe)
