# Issue 7: data-quality rules, transforms, the unsynchronised clock, the real data sets
# (docs/data-quality.md). Included from tests/CMakeLists.txt; paths are relative to tests/.
edgepipe_add_test(validation_test
  SOURCES validation/vtest.cpp validation/validation_config_test.cpp validation/rules_test.cpp
          validation/transform_test.cpp
  LIBS edgepipe_agent
  LABELS unit validation)
target_include_directories(validation_test PRIVATE ${PROJECT_SOURCE_DIR}/agent/src)
