#include "io/priority.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

namespace hearth::io {
namespace {

TEST(io_priority, lowers_only_the_calling_thread) {
  const int main_policy = ::sched_getscheduler(0);
  errno = 0;
  const int main_nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
  int policy = -1, nice = 0;
  long ioprio = -1;
  bool ok = false;
  std::thread t([&] {
    ok = make_thread_background().ok();
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    policy = ::sched_getscheduler(0);
    nice = ::getpriority(PRIO_PROCESS, tid);
    ioprio = ::syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, static_cast<int>(tid));
  });
  t.join();
  ASSERT_TRUE(ok);
  EXPECT_EQ(policy, SCHED_BATCH);
  EXPECT_EQ(nice, std::min(main_nice + 10, 19)) << "nice is absolute: +10 from 0, capped at 19";
  EXPECT_EQ(ioprio, (2 << 13) | 7);  // best-effort, level 7
  // This thread is untouched.
  EXPECT_EQ(::sched_getscheduler(0), main_policy);
  EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid))), main_nice);
}

}  // namespace
}  // namespace hearth::io
