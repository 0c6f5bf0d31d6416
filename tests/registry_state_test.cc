// runtime/registry/daemon/state: registry.state written and read back, and what a
// restarted registry does with a file it did not write well.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "runtime/registry/daemon/state.h"

using fwipc::registry::read_state_file;
using fwipc::registry::StateRecord;
using fwipc::registry::write_state_file;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/fwipc-state-XXXXXX";
    REQUIRE(::mkdtemp(t) != nullptr);
    path = t;
  }
  ~TempDir() { (void)!std::system(("rm -rf " + path).c_str()); }
};

StateRecord record(const char* name, uint32_t transport, const std::string& path) {
  StateRecord r;
  r.name = name;
  r.type = 2;
  r.transport = transport;
  r.uid = 1000;
  r.gid = 100;
  r.mode = 0640;
  r.capacity = 147456;
  r.creator_pid = 4242;
  r.creator_start = 123456789012ull;
  r.instance_id = 0xfeedfacecafebeefull;
  r.path = path;
  return r;
}

}  // namespace

TEST_CASE("shouldReadBackEveryFieldItWrote") {
  TempDir d;
  const std::string file = d.path + "/registry.state";
  const StateRecord a = record("cam.raw", 0, "");
  const StateRecord b = record("logd", 1, d.path + "/logd.sock");
  StateRecord c = record("v2q", 0, "");
  c.v2 = true;
  REQUIRE(write_state_file(file, {a, b, c}) == 0);
  const auto got = read_state_file(file);
  REQUIRE(got.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    const StateRecord& w = i == 0 ? a : i == 1 ? b : c;
    const StateRecord& r = got[i];
    CHECK(r.name == w.name);
    CHECK(r.type == w.type);
    CHECK(r.transport == w.transport);
    CHECK(r.uid == w.uid);
    CHECK(r.gid == w.gid);
    CHECK(r.mode == w.mode);
    CHECK(r.capacity == w.capacity);
    CHECK(r.creator_pid == w.creator_pid);
    CHECK(r.creator_start == w.creator_start);
    CHECK(r.instance_id == w.instance_id);
    CHECK(r.path == w.path);
    CHECK(r.v2 == w.v2);
  }
  struct stat st;
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);  // it names every channel and its creator
  CHECK(::access((file + ".tmp").c_str(), F_OK) != 0);
}

TEST_CASE("shouldReplaceTheWholeFileAtomically") {
  TempDir d;
  const std::string file = d.path + "/registry.state";
  REQUIRE(write_state_file(file, {record("one", 0, ""), record("two", 0, "")}) == 0);
  REQUIRE(write_state_file(file, {record("three", 0, "")}) == 0);
  const auto got = read_state_file(file);
  REQUIRE(got.size() == 1);
  CHECK(got[0].name == "three");
}

TEST_CASE("shouldSkipMalformedLinesBadNamesAndUnknownTransports") {
  TempDir d;
  const std::string file = d.path + "/registry.state";
  FILE* f = std::fopen(file.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fputs("garbage\n", f);
  std::fputs("ok 2 0 1 1 600 0 7 8 9 -\n", f);
  std::fputs("../etc 2 0 1 1 600 0 7 8 9 -\n", f);  // a name that escapes the directory
  std::fputs("late 2 9 1 1 600 0 7 8 9 -\n", f);    // a transport of a newer build
  std::fputs("short 2 0 1 1\n", f);
  std::fputs("wide 2 0 1 1 7777 0 7 8 9 -\n", f);  // mode bits past 0777 are dropped
  std::fclose(f);
  const auto got = read_state_file(file);
  REQUIRE(got.size() == 2);
  CHECK(got[0].name == "ok");
  CHECK(got[0].path.empty());
  CHECK(!got[0].v2);  // a file of a build before ring v2 had no layout field
  CHECK(got[1].name == "wide");
  CHECK(got[1].mode == 0777);
}

TEST_CASE("shouldReadNothingFromAMissingFileAndRefuseAnUnwritableOne") {
  TempDir d;
  CHECK(read_state_file(d.path + "/none").empty());
  CHECK(write_state_file(d.path + "/no/such/dir/registry.state", {record("x", 0, "")}) < 0);
}
