#include "edgepipe/core/clock.h"

#include <time.h>

namespace edgepipe {

static int64_t ReadClock(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

int64_t RealClock::SystemNowUs() const { return ReadClock(CLOCK_REALTIME); }
int64_t RealClock::MonotonicNowUs() const { return ReadClock(CLOCK_BOOTTIME); }

Clock& RealClock::Default() {
  static RealClock clock;
  return clock;
}

}  // namespace edgepipe
