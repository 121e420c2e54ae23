#include "io/file_lock.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/test_util.hpp"

namespace hearth::io {
namespace {
using testing::temp_dir;

TEST(file_lock, one_holder_at_a_time_and_released_on_destruction) {
  temp_dir dir;
  std::string path = dir.path() + "/owner.lock";
  auto a = file_lock::try_acquire(path, "node-a pid 1");
  ASSERT_TRUE(a.ok()) << a.err().to_string();
  // A second open file description conflicts, even in the same process.
  auto b = file_lock::try_acquire(path, "node-b pid 2");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.err().code, errc::unavailable);
  EXPECT_NE(b.err().message.find("is held by node-a pid 1"), std::string::npos) << b.err().message;
  std::unique_ptr<file_lock> held = std::move(*a);
  held.reset();  // released
  auto c = file_lock::try_acquire(path, "node-c pid 3");
  ASSERT_TRUE(c.ok()) << c.err().to_string();
}

TEST(file_lock, released_when_the_holder_is_killed) {
  temp_dir dir;
  std::string path = dir.path() + "/owner.lock";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto l = file_lock::try_acquire(path, "child");
    char x = l.ok() ? 'y' : 'n';
    (void)!::write(ready[1], &x, 1);
    ::pause();
    ::_exit(0);
  }
  char x = 0;
  ASSERT_EQ(::read(ready[0], &x, 1), 1);
  ASSERT_EQ(x, 'y');
  EXPECT_FALSE(file_lock::try_acquire(path, "parent").ok());
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  auto l = file_lock::try_acquire(path, "parent");
  EXPECT_TRUE(l.ok()) << l.err().to_string();
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST(file_lock, missing_directory_is_an_error) {
  auto l = file_lock::try_acquire("/nonexistent-hearth-dir/owner.lock", "x");
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.err().code, errc::not_found);
}

}  // namespace
}  // namespace hearth::io
