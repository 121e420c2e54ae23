#include "io/priority.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "io/file.hpp"

namespace hearth::io {

namespace {
// From linux/ioprio.h, which glibc does not wrap.
constexpr int ioprio_who_process = 1;
constexpr int ioprio_class_shift = 13;
constexpr int ioprio_class_be = 2;
}  // namespace

status make_thread_background() {
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  sched_param param{};
  param.sched_priority = 0;
  // Policy 0 ("this thread") for sched_setscheduler, the tid for the other two: all three are
  // per thread on Linux.
  if (::sched_setscheduler(0, SCHED_BATCH, &param) != 0)
    return errno_error("sched_setscheduler(SCHED_BATCH)", "thread", errno);
  errno = 0;
  const int nice = ::getpriority(PRIO_PROCESS, tid);  // -1 is a valid value: errno tells
  if (errno != 0) return errno_error("getpriority", "thread", errno);
  if (::setpriority(PRIO_PROCESS, tid, std::min(nice + 10, 19)) != 0)
    return errno_error("setpriority(+10)", "thread", errno);
  if (::syscall(SYS_ioprio_set, ioprio_who_process, static_cast<int>(tid),
                (ioprio_class_be << ioprio_class_shift) | 7) != 0)
    return errno_error("ioprio_set(best-effort, 7)", "thread", errno);
  return {};
}

}  // namespace hearth::io
