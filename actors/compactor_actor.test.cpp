#include "actors/compactor_actor.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "io/posix_file.hpp"

namespace hearth {
namespace {

namespace fs = std::filesystem;

// Two partition directories with a few replaced files each.
struct removal_fixture {
  fs::path root =
      fs::temp_directory_path() / ("hearth-removals-test-" + std::to_string(::getpid()));
  io::posix_file_system files;

  removal_fixture() {
    fs::create_directories(root / "a");
    fs::create_directories(root / "b");
  }
  ~removal_fixture() { fs::remove_all(root); }

  std::string make(const std::string& name) {
    std::string path = (root / name).string();
    EXPECT_TRUE(files.write_file_atomic(path, as_bytes(std::string("x"))).ok());
    return path;
  }
};

TEST(deferred_removals, files_go_in_queue_order_once_due) {
  removal_fixture f;
  deferred_removals q;
  const std::string first = f.make("a/L0-1.hseg"), second = f.make("a/L0-2.hseg"),
                    third = f.make("a/L1-3.hseg");
  q.add({first, 100, 10, 1000});
  q.add({second, 200, 20, 1000});
  q.add({third, 300, 30, 2000});
  EXPECT_EQ(q.bytes(), 60u);
  EXPECT_EQ(q.remove_due(f.files, 999), 0u);
  EXPECT_TRUE(fs::exists(first));
  EXPECT_EQ(q.remove_due(f.files, 1000), 2u);
  EXPECT_FALSE(fs::exists(first));
  EXPECT_FALSE(fs::exists(second));
  EXPECT_TRUE(fs::exists(third));
  EXPECT_EQ(q.files(), 1u);
  EXPECT_EQ(q.bytes(), 30u);
  // A file that is already gone (a restart's recovery deleted it) leaves the queue quietly.
  fs::remove(third);
  EXPECT_EQ(q.remove_due(f.files, 5000), 1u);
  EXPECT_EQ(q.files(), 0u);
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(deferred_removals, retention_removes_the_expired_files_of_its_directory_at_once) {
  removal_fixture f;
  deferred_removals q;
  const std::string old_a = f.make("a/L0-1.hseg"), new_a = f.make("a/L0-2.hseg"),
                    old_b = f.make("b/L0-3.hseg");
  q.add({old_a, 100, 1, 1'000'000});
  q.add({new_a, 900, 1, 1'000'000});
  q.add({old_b, 100, 1, 1'000'000});
  // now 1000, retention 500: the cut-off is 500; only a/'s files are asked about.
  EXPECT_EQ(q.remove_expired(f.files, (f.root / "a").string(), 500, 1000), 1u);
  EXPECT_FALSE(fs::exists(old_a));
  EXPECT_TRUE(fs::exists(new_a));
  EXPECT_TRUE(fs::exists(old_b));
  EXPECT_EQ(q.files(), 2u);
  // A directory whose name extends another's is not under it.
  EXPECT_EQ(q.remove_expired(f.files, (f.root / "").string() + "a/L0", 500, 1000), 0u);
  // Without retention nothing expires.
  EXPECT_EQ(q.remove_expired(f.files, (f.root / "b").string(), 0, 1000), 0u);
  EXPECT_TRUE(fs::exists(old_b));
  EXPECT_EQ(q.remove_due(f.files, 1'000'000), 2u);
}

}  // namespace
}  // namespace hearth
