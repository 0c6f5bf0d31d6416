// Whom the runtime trusts: a runtime directory nobody else controls, and a registry of root
// or the caller's own uid. Real processes of real uids (setuid children), so it runs
// unsandboxed as root. The attacker is nobody; the victim is daemon (uid 1), whose fallback
// runtime directory is /tmp/freeworld-ipc-1.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/rundir.h"
#include "ipc.h"
#include "tests/support.h"

using fwipc::test::spawn;
using fwipc::test::TempRuntime;
using fwipc::test::wait_exit;
using fwipc::test::wait_exit_within;

using fwipc::test::registry_pid_at;

namespace {
constexpr uid_t kNobody = 65534;
constexpr uid_t kVictim = 1;  // neither root nor nobody
const std::string kFallback = "/tmp/freeworld-ipc-1";
constexpr int kBoundMs = 20'000;  // against hangs only; several fit in the test timeout

bool become(uid_t uid) {
  if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0) return false;
  ::prctl(PR_SET_DUMPABLE, 1);  // a uid change would hand /proc/self to root
  return true;
}


void kill_registry_at(const std::string& dir) {
  const pid_t pid = registry_pid_at(dir);
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 1000 && ::kill(pid, 0) == 0; ++i) ::usleep(2000);  // not our child
}

// Removes path whatever it is, without following a symbolic link.
void remove_path(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISLNK(st.st_mode)) {
    ::unlink(path.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

void clear_fallback() {
  kill_registry_at(kFallback);
  remove_path(kFallback);
}

// What one test made in /tmp, removed at the end also when a REQUIRE fails (the test may
// run again), plus a copy of fwipc-registryd other uids can execute (the runfiles are
// under root's 0700 home).
struct Scratch {
  std::vector<pid_t> registries;  // our children
  std::vector<std::string> paths;
  std::string registryd;

  Scratch() {
    clear_fallback();
    const char* exe = std::getenv("FWIPC_REGISTRYD");  // set by TempRuntime
    REQUIRE(exe != nullptr);
    const std::string bin = make_dir("/tmp/fwipc-bin-XXXXXX", 0, 0755);
    registryd = bin + "/fwipc-registryd";
    std::filesystem::copy_file(exe, registryd);
    ::chmod(registryd.c_str(), 0755);
    ::setenv("FWIPC_REGISTRYD", registryd.c_str(), 1);
  }
  ~Scratch() {
    for (pid_t p : registries) {
      ::kill(p, SIGKILL);
      wait_exit(p);
    }
    clear_fallback();
    for (const std::string& p : paths) remove_path(p);
  }
  std::string make_dir(const char* tmpl, uid_t owner, mode_t mode) {
    std::string t = tmpl;
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    paths.push_back(t);
    REQUIRE(::chown(t.c_str(), owner, owner) == 0);
    REQUIRE(::chmod(t.c_str(), mode) == 0);
    return t;
  }
  // fwipc-registryd --dir dir as uid; its stderr to err_fd if >= 0.
  pid_t start_registry(uid_t uid, const std::string& dir, int err_fd = -1) {
    const std::string exe = registryd;
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (err_fd >= 0) ::dup2(err_fd, 2);
      if (!become(uid)) ::_exit(126);
      ::execl(exe.c_str(), exe.c_str(), "--dir", dir.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    REQUIRE(pid > 0);
    registries.push_back(pid);
    return pid;
  }
  // Waits (bounded) until the registry pid binds dir/registry.sock.
  static bool serving(pid_t pid, const std::string& dir) {
    for (int i = 0; i < kBoundMs / 5; ++i) {
      struct stat st;
      if (::lstat((dir + "/registry.sock").c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && registry_pid_at(dir) == pid)
        return true;
      if (::waitpid(pid, nullptr, WNOHANG) == pid) return false;
      ::usleep(5000);
    }
    return false;
  }
};

// The fallback case: the process has no runtime directory set, so it picks kFallback.
void unset_runtime_dirs() {
  ::unsetenv("FWIPC_RUNTIME_DIR");
  ::unsetenv("XDG_RUNTIME_DIR");
}

// In a child of uid, after env(): creates a QUEUE channel, sends and receives one message on
// it and closes it. Exit code 0 if all that worked, the errno of a failed create (EPERM is
// 1), or >= 200 for anything else (205: the runtime directory is not expect_dir).
int create_as(uid_t uid, const std::function<void()>& env, const std::string& expect_dir = "") {
  const pid_t child = spawn([&] {
    env();
    if (uid != 0 && !become(uid)) return 200;
    if (!expect_dir.empty() && fwipc::runtime_dir() != expect_dir) return 205;
    const int id = ipc_create_channel("victim", IPC_TYPE_QUEUE, 0);
    if (id < 0) return -id < 200 ? -id : 201;
    if (ipc_send(uint32_t(id), "x", 1, 0) != 1) return 202;
    char b[8];
    if (ipc_receive(uint32_t(id), b, sizeof b) != 1) return 203;
    return ipc_close_channel(uint32_t(id)) == 0 ? 0 : 204;
  });
  return wait_exit_within(child, kBoundMs);
}

// In a child of uid, with FWIPC_RUNTIME_DIR=dir and no auto-start: ipc_open_channel's result
// as exit code (0, or its errno).
int open_as(uid_t uid, const std::string& dir, const char* name) {
  const pid_t child = spawn([&] {
    ::setenv("FWIPC_RUNTIME_DIR", dir.c_str(), 1);
    ::setenv("FWIPC_NO_AUTOSTART", "1", 1);
    if (!become(uid)) return 200;
    const int id = ipc_open_channel(name, IPC_MODE_READ);
    return id >= 0 ? 0 : -id < 200 ? -id : 201;
  });
  return wait_exit_within(child, kBoundMs);
}

}  // namespace

// The attack: nobody made the victim's fallback directory (0777) and serves it.
TEST_CASE("shouldRefuseAFallbackDirectoryMadeByAnotherUid") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  TempRuntime rt;
  Scratch s;
  REQUIRE(::mkdir(kFallback.c_str(), 0700) == 0);
  REQUIRE(::chown(kFallback.c_str(), kNobody, kNobody) == 0);
  REQUIRE(Scratch::serving(s.start_registry(kNobody, kFallback), kFallback));
  // Opened up once its registry runs, as an attacker would (fwipc-registryd refuses 0777).
  REQUIRE(::chmod(kFallback.c_str(), 0777) == 0);

  CHECK(create_as(kVictim, unset_runtime_dirs, kFallback) == EPERM);
  CHECK(create_as(kVictim, [&] { ::setenv("FWIPC_RUNTIME_DIR", kFallback.c_str(), 1); }) == EPERM);
  // Nothing reached nobody's registry: no channel of that name exists there.
  REQUIRE(::chmod(kFallback.c_str(), 0700) == 0);
  CHECK(open_as(kNobody, kFallback, "victim") == ENOENT);
}

// The same through a symbolic link at the fallback path to nobody's 0777 directory; a
// FWIPC_RUNTIME_DIR naming that directory itself is refused too.
TEST_CASE("shouldRefuseASymlinkAtTheFallbackPath") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  TempRuntime rt;
  Scratch s;
  const std::string evil = s.make_dir("/tmp/fwipc-evil-XXXXXX", kNobody, 0700);
  REQUIRE(Scratch::serving(s.start_registry(kNobody, evil), evil));
  REQUIRE(::chmod(evil.c_str(), 0777) == 0);
  REQUIRE(::symlink(evil.c_str(), kFallback.c_str()) == 0);
  REQUIRE(::lchown(kFallback.c_str(), kNobody, kNobody) == 0);

  CHECK(create_as(kVictim, unset_runtime_dirs, kFallback) == EPERM);
  CHECK(create_as(kVictim, [&] { ::setenv("FWIPC_RUNTIME_DIR", evil.c_str(), 1); }) == EPERM);
  CHECK(create_as(kVictim, [&] { ::setenv("FWIPC_RUNTIME_DIR", (kFallback + "/").c_str(), 1); }) == EPERM);
  // A link to a directory that would pass (root's) is still a link.
  remove_path(kFallback);
  REQUIRE(::symlink(rt.dir().c_str(), kFallback.c_str()) == 0);
  CHECK(create_as(kVictim, unset_runtime_dirs, kFallback) == EPERM);
}

// A directory that passes the check, served by nobody's registry: root made it 0755, handed
// it to nobody while its registry bound the socket, then took it back.
TEST_CASE("shouldRefuseARegistryOfAnotherUidInADirectoryThatPassesTheCheck") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  TempRuntime rt;
  Scratch s;
  const std::string dir = s.make_dir("/tmp/fwipc-handed-XXXXXX", kNobody, 0755);
  REQUIRE(Scratch::serving(s.start_registry(kNobody, dir), dir));
  REQUIRE(::chown(dir.c_str(), 0, 0) == 0);
  std::string why;
  REQUIRE(fwipc::check_runtime_dir(dir, &why) == 0);

  const auto in_dir = [&] {
    ::setenv("FWIPC_RUNTIME_DIR", dir.c_str(), 1);
    ::setenv("FWIPC_NO_AUTOSTART", "1", 1);
  };
  CHECK(create_as(kVictim, in_dir) == EPERM);
  CHECK(create_as(0, in_dir) == EPERM);  // root trusts only root's registries too
  CHECK(create_as(kVictim, [&] {
          in_dir();
          ::setenv("FWIPC_REGISTRY_UID", "nobody", 1);  // a uid, not a name: trusts no one more
        }) == EPERM);
  // The administrator names nobody as a registry uid (and lets it write there: root:nogroup
  // 0775 passes, being root's): now it serves.
  REQUIRE(::chown(dir.c_str(), 0, kNobody) == 0);
  REQUIRE(::chmod(dir.c_str(), 0775) == 0);
  CHECK(create_as(kVictim, [&] {
          in_dir();
          ::setenv("FWIPC_REGISTRY_UID", std::to_string(kNobody).c_str(), 1);
        }) == 0);
}

// The victim's own fallback directory is refused too when others may write to it.
TEST_CASE("shouldRefuseAnOwnDirectoryOthersCanWrite") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  TempRuntime rt;
  Scratch s;
  for (mode_t mode : {0777, 0770, 0722}) {
    CAPTURE(mode);
    remove_path(kFallback);
    REQUIRE(::mkdir(kFallback.c_str(), 0700) == 0);
    REQUIRE(::chown(kFallback.c_str(), kVictim, kVictim) == 0);
    REQUIRE(::chmod(kFallback.c_str(), mode) == 0);
    CHECK(create_as(kVictim, unset_runtime_dirs, kFallback) == EPERM);
    struct stat st;
    CHECK(::lstat((kFallback + "/registry.sock").c_str(), &st) != 0);  // none was started there
  }
}

// With no directory at the fallback path the runtime makes its own (0700) and uses it, and
// uses it again once it exists.
TEST_CASE("shouldCreateAndUseTheCallersOwnFallbackDirectory") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  TempRuntime rt;
  Scratch s;
  const auto fallback = [] {
    unset_runtime_dirs();
    ::setenv("FWIPC_REGISTRY_IDLE_MS", "60000", 1);  // still there for the second call
  };
  REQUIRE(create_as(kVictim, fallback, kFallback) == 0);
  struct stat st;
  REQUIRE(::lstat(kFallback.c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK(st.st_uid == kVictim);
  CHECK((st.st_mode & 07777) == 0700);
  const pid_t reg = registry_pid_at(kFallback);
  CHECK(reg > 0);
  CHECK(create_as(kVictim, fallback, kFallback) == 0);
  CHECK(registry_pid_at(kFallback) == reg);  // the same registry served both
}

// Root's directory and root's registry serve every uid (what perms_test relies on).
TEST_CASE("shouldUseRootsDirectoryAndRegistryFromAnyUid") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  TempRuntime rt;
  const int c = ipc_create_channel_ex("shared", IPC_TYPE_QUEUE, 0, 0666);
  REQUIRE(c >= 0);
  CHECK(open_as(kVictim, rt.dir(), "shared") == 0);
  CHECK(open_as(kNobody, rt.dir(), "shared") == 0);
  CHECK(ipc_close_channel(uint32_t(c)) == 0);
}

// fwipc-registryd refuses to serve a directory that fails the check, and says which and why.
TEST_CASE("shouldRefuseToServeADirectoryThatFailsTheCheck") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  TempRuntime rt;
  Scratch s;
  const std::string victims = s.make_dir("/tmp/fwipc-victims-XXXXXX", kVictim, 0755);
  const std::string open = s.make_dir("/tmp/fwipc-open-XXXXXX", kNobody, 0777);
  const std::string link = open + "-link";
  s.paths.push_back(link);
  REQUIRE(::symlink(s.make_dir("/tmp/fwipc-target-XXXXXX", kNobody, 0700).c_str(), link.c_str()) == 0);
  struct Case {
    std::string dir, reason;
  };
  for (const Case& k : {Case{victims, "owned by uid 1"}, Case{open, "mode 0777"}, Case{link, "symbolic link"}}) {
    CAPTURE(k.dir);
    int p[2];
    REQUIRE(::pipe(p) == 0);
    const pid_t pid = s.start_registry(kNobody, k.dir, p[1]);
    ::close(p[1]);
    CHECK(wait_exit_within(pid, kBoundMs) == 1);
    s.registries.pop_back();  // reaped: never signal a pid that may be reused
    std::string err;
    char buf[512];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) err.append(buf, size_t(n));
    ::close(p[0]);
    CAPTURE(err);
    CHECK(err.find("refusing to serve runtime directory " + k.dir + ": ") != std::string::npos);
    CHECK(err.find(k.reason) != std::string::npos);
    struct stat st;
    CHECK(::lstat((k.dir + "/registry.sock").c_str(), &st) != 0);
  }
}

// check_runtime_dir's rules and reasons, from root and from an ordinary uid.
TEST_CASE("shouldCheckARuntimeDirectoryByOwnerModeAndType") {
  REQUIRE_MESSAGE(::geteuid() == 0, "this test needs root to switch uid");
  TempRuntime rt;
  Scratch s;
  const std::string roots = s.make_dir("/tmp/fwipc-root-XXXXXX", 0, 0777);
  const std::string nobodys = s.make_dir("/tmp/fwipc-nobody-XXXXXX", kNobody, 0700);
  const std::string own = s.make_dir("/tmp/fwipc-own-XXXXXX", kVictim, 0700);
  const std::string own_open = s.make_dir("/tmp/fwipc-ownopen-XXXXXX", kVictim, 0775);
  const std::string file = own + "/file";
  const std::string link = roots + "/link";
  REQUIRE(::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0600)) == 0);
  REQUIRE(::symlink(own.c_str(), link.c_str()) == 0);

  std::string why;
  CHECK(fwipc::check_runtime_dir(roots, &why) == 0);  // root's: root chose its mode
  CHECK(fwipc::check_runtime_dir(rt.dir(), &why) == 0);
  CHECK(fwipc::check_runtime_dir(nobodys, &why) == -EPERM);
  CHECK(why ==
        "runtime directory " + nobodys + ": owned by uid 65534, not by root or uid 0 (another user controls it)");
  CHECK(fwipc::check_runtime_dir(link, &why) == -EPERM);
  CHECK(why.find(link) != std::string::npos);
  CHECK(why.find("symbolic link") != std::string::npos);
  CHECK(fwipc::check_runtime_dir(file, &why) == -ENOTDIR);
  CHECK(fwipc::check_runtime_dir(roots + "/missing", &why) == -ENOENT);
  CHECK(std::string(ipc_strerror(-EPERM)).find("another user") != std::string::npos);

  // The same rules seen by uid 1: its own 0700 passes, its own group-writable one does not.
  const pid_t child = spawn([&] {
    if (!become(kVictim)) return 100;
    std::string w;
    if (fwipc::check_runtime_dir(own, &w) != 0) return 1;
    if (fwipc::check_runtime_dir(roots, &w) != 0) return 2;
    if (fwipc::check_runtime_dir(own_open, &w) != -EPERM) return 3;
    if (w != "runtime directory " + own_open + ": mode 0775, writable by other users (make it 0700 or 0755)") return 4;
    if (fwipc::check_runtime_dir(nobodys, &w) != -EPERM) return 5;
    return 0;
  });
  CHECK(wait_exit_within(child, kBoundMs) == 0);
}

// ensure_dir makes the runtime directory 0700 whatever the umask lets through, parents
// 0755, and leaves an existing directory alone for check_runtime_dir to judge.
TEST_CASE("shouldCreateAMissingRuntimeDirectoryPrivate") {
  TempRuntime rt;
  Scratch s;
  const std::string base = s.make_dir("/tmp/fwipc-mk-XXXXXX", ::geteuid(), 0700);
  const mode_t old = ::umask(0);
  const int rc = fwipc::ensure_dir(base + "/a/b");
  ::umask(old);
  REQUIRE(rc == 0);
  struct stat st;
  REQUIRE(::lstat((base + "/a").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  REQUIRE(::lstat((base + "/a/b").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(fwipc::check_runtime_dir(base + "/a/b", nullptr) == 0);
}
