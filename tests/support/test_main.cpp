// Shared main for every CppUTest suite.
#include <CppUTest/CommandLineTestRunner.h>
#include <CppUTest/MemoryLeakWarningPlugin.h>

int main(int argc, char** argv) {
  // CppUTest's leak detector replaces global new/delete and reports process-lifetime caches
  // (function-local statics, library singletons) as leaks. Leaks are checked by
  // LeakSanitizer in the sanitizer build instead (scripts/test.sh runs it).
  MemoryLeakWarningPlugin::turnOffNewDeleteOverloads();
  return CommandLineTestRunner::RunAllTests(argc, argv);
}
