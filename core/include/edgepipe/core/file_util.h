// Reading a small file whole: configuration, secrets, the status and quality-report files, the
// buffer's acknowledgement journal.
#pragma once

#include <string>

#include "edgepipe/core/status.h"

namespace edgepipe {

// The bytes of the file at `path`. kNotFound when it does not exist; kFailedPrecondition when it
// cannot be opened or read — permissions, a directory, an I/O error part way — never a silently
// shortened text (which `std::ifstream` and `<< rdbuf()` give on a read error). The message is
// "cannot read <path>: <strerror>"; `*error` (optional) gets the errno, 0 on success.
Result<std::string> ReadWholeFile(const std::string& path, int* error = nullptr);

}  // namespace edgepipe
