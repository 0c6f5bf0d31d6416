// base/time: the one Deadline type every timed call uses.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <climits>

#include "base/time.h"

using fwipc::Deadline;

TEST_CASE("shouldNeverExpireANegativeTimeout") {
  const Deadline d = Deadline::after_ns(-1);
  CHECK(d.infinite());
  CHECK_FALSE(d.expired());
  CHECK(d.remaining_ns() == -1);
  CHECK(d.poll_ms() == -1);
  CHECK(d.poll_ms(5) == 5);  // a capped nap still wakes
  CHECK(Deadline::after_ms(-7).infinite());
}

TEST_CASE("shouldExpireAZeroTimeoutAtOnce") {
  const Deadline d = Deadline::after_ns(0);
  CHECK_FALSE(d.infinite());
  CHECK(d.expired());
  CHECK(d.remaining_ns() == 0);
  CHECK(d.poll_ms() == 0);
}

TEST_CASE("shouldRoundPollTimeoutsUpSoAWaiterDoesNotSpinBeforeTheDeadline") {
  const Deadline d = Deadline::after_ns(1);  // 1 ns left at most: still one whole ms to poll
  CHECK(d.poll_ms() <= 1);
  const Deadline later = Deadline::after_ms(1500);
  CHECK(later.poll_ms() > 1000);
  CHECK(later.poll_ms() <= 1500);
  CHECK(later.poll_ms(100) == 100);
  CHECK_FALSE(later.expired());
  CHECK(later.remaining_ns() > 1000000000);
}

TEST_CASE("shouldClampVeryLongTimeoutsToWhatPollTakes") {
  const Deadline d = Deadline::after_ns(int64_t(1) << 62);
  CHECK(d.poll_ms() == INT_MAX);
}
