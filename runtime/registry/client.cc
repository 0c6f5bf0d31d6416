// See client.h. The spawn forks twice so the daemon is reparented (no zombie, no
// unexpected child for the application's waitpid), and does only async-signal-safe work
// between fork and exec: the caller may have other threads.
#include "runtime/registry/client.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "base/rundir.h"
#include "base/unixsock.h"

namespace fwipc::registry {
namespace {

// The largest answer of the protocol (Refusal; Reply, ChannelInfo and QuotaInfo are smaller).
constexpr size_t kMaxAnswerBytes = 1024;
static_assert(sizeof(Refusal) <= kMaxAnswerBytes && sizeof(ChannelInfo) <= kMaxAnswerBytes);

bool executable(const std::string& p) { return !p.empty() && ::access(p.c_str(), X_OK) == 0; }

std::string dirname_of(const std::string& p) {
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

// The directory of the object this function was linked into: libfwipc.so, or the
// executable when the runtime is linked statically.
std::string own_object_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&own_object_dir), &info) == 0 || info.dli_fname == nullptr) return "";
  std::string path = info.dli_fname;
  // The main program's entry may be its bare name: /proc/self/exe is exact.
  if (path.find('/') == std::string::npos) path = "/proc/self/exe";
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real) == nullptr) return "";
  return dirname_of(real);
}

// A registry runs as root, as our effective uid, or as the uid the administrator named:
// the registry makes the channels, so any other uid could read what is sent on them.
int check_registry(int fd, const std::string& dir, const ClientOptions& o, std::string* why) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -errno;
  const uid_t me = ::geteuid();
  if (cred.uid == 0 || cred.uid == me || (o.registry_uid && cred.uid == *o.registry_uid)) return 0;
  *why = "registry of " + dir + " (pid " + std::to_string(cred.pid) + "): runs as uid " + std::to_string(cred.uid) +
         ", not as root or uid " + std::to_string(me) + " (FWIPC_REGISTRY_UID may name one more uid to trust)";
  return -EPERM;
}

// Connects to the registry socket at path and checks who listens there.
int connect_trusted(const std::string& path, const std::string& dir, const ClientOptions& o, std::string* why) {
  const int fd = connect_seqpacket(path, kCallTimeoutSec);
  if (fd < 0) return fd;
  if (int rc = check_registry(fd, dir, o, why); rc < 0) {
    ::close(fd);
    return rc;
  }
  return fd;
}

int connect_or_start(const std::string& dir, const ClientOptions& o, std::string* why) {
  // Nothing is sent to, nor started in, a directory another uid controls. A missing one is
  // made below (ours, 0700) and checked again.
  int rc = check_runtime_dir(dir, why);
  if (rc < 0 && rc != -ENOENT) return rc;
  const std::string path = dir + "/" + kSocketName;
  int fd = rc == 0 ? connect_trusted(path, dir, o, why) : -ENOENT;
  if (fd >= 0 || fd == -ENAMETOOLONG || fd == -EACCES || fd == -EPERM) return fd;
  if (!o.autostart) return -ECONNREFUSED;
  const std::string exe = find_registryd(o.registryd);
  if (exe.empty()) return -ECONNREFUSED;
  if (rc = ensure_dir(dir); rc < 0) return rc;
  if (rc = check_runtime_dir(dir, why); rc < 0) return rc;  // it existed after all, someone else's
  if (rc = spawn_registryd(exe, dir, o.idle_exit_ms); rc < 0) return rc;
  // The new registry needs a moment to bind; a concurrent starter may win the lock. The
  // lock may also still be held by a registry on its way out (an idle exit that closed
  // its socket just before we connected): ours then stopped at once, so start another
  // now and then until one serves (a surplus one exits: the lock is taken).
  for (int i = 0; i < 500; ++i) {
    fd = connect_trusted(path, dir, o, why);
    if (fd >= 0 || fd == -EPERM) return fd;
    if (i % 25 == 24) spawn_registryd(exe, dir, o.idle_exit_ms);
    ::usleep(i < 50 ? 1000 : 10000);
  }
  // It did not come up (fwipc-registryd says why on its stderr when run by hand: a
  // directory it may not use, a malformed policy).
  return fd == -EACCES ? fd : -ECONNREFUSED;
}

}  // namespace

std::string find_registryd(const std::string& configured) {
  if (!configured.empty()) return executable(configured) ? configured : "";
  std::vector<std::string> candidates;
  if (const std::string here = own_object_dir(); !here.empty()) {
    for (const char* rel : {"/registry/daemon/fwipc-registryd",                // bazel-bin/runtime/libfwipc.so
                            "/../runtime/registry/daemon/fwipc-registryd",     // bazel-bin/<pkg>/program
                            "/../../runtime/registry/daemon/fwipc-registryd",  // bazel-bin/<pkg>/<sub>/program
                            "/../libexec/fwipc-registryd", "/fwipc-registryd", "/../bin/fwipc-registryd"})
      candidates.push_back(here + rel);
  }
  for (const char* p : {"/usr/libexec/fwipc-registryd", "/usr/bin/fwipc-registryd",
                        "/usr/local/libexec/fwipc-registryd", "/usr/local/bin/fwipc-registryd"})
    candidates.emplace_back(p);
  for (const std::string& c : candidates)
    if (executable(c)) return c;
  return "";
}

int spawn_registryd(const std::string& exe, const std::string& dir, int idle_exit_ms) {
  // Everything the child needs is built before fork: no allocation after it.
  const std::string ms = std::to_string(idle_exit_ms);
  const char* argv[] = {exe.c_str(), "--dir", dir.c_str(), "--idle-exit-ms", ms.c_str(), nullptr};
  // The caller's environment without NOTIFY_SOCKET: an auto-started registry is not the
  // service manager's main process, and its READY=1 (it says so once it listens, for
  // Type=notify units) would tell the manager, or a test waiting for the caller's own
  // READY=1, that the caller is ready before it is.
  std::vector<char*> envp;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e)
    if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) envp.push_back(*e);
  envp.push_back(nullptr);
  const pid_t child = ::fork();
  if (child < 0) return -errno;
  if (child == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    // Keep none of the caller's sockets or pipes alive in the daemon.
    const int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    for (int fd = 3; fd < 65536; ++fd) ::close(fd);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
    ::execve(exe.c_str(), const_cast<char* const*>(argv), envp.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return 0;
}

void Client::reset() noexcept {
  if (conn_ >= 0) ::close(conn_);
  conn_ = -1;
}

int Client::call(const std::string& dir, const ClientOptions& o, Request rq, void* reply, size_t reply_len, int* fds,
                 uint64_t only_serial) {
  rq.magic = kProtoMagic;
  if (conn_ >= 0 && dir_ != dir) reset();  // FWIPC_RUNTIME_DIR changed: that directory's registry
  if (only_serial != 0 && (conn_ < 0 || serial_ != only_serial)) return -EPIPE;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (conn_ < 0) {
      if (only_serial != 0) return -EPIPE;  // it went away under the request
      std::string why;
      const int fd = connect_or_start(dir, o, &why);
      // ipc_strerror(-EPERM) cannot say which directory or whose registry: keep the
      // reason for ipc_last_error_detail() (a library does not print).
      if ((fd == -EPERM || fd == -ENOTDIR) && !why.empty()) {
        refusal_ = why;
        ++refusals_;
      }
      if (fd < 0) return fd;
      conn_ = fd;
      dir_ = dir;
      ++serial_;
    }
    if (::send(conn_, &rq, sizeof rq, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof rq)) {
      reset();
      continue;
    }
    int got[kReplyFds];
    // Room for a Refusal too (a registry over its limits answers any request with one).
    alignas(8) char in[kMaxAnswerBytes];
    if (reply_len > sizeof in) return -EINVAL;
    ssize_t n = recv_with_fds(conn_, in, sizeof in, got, kReplyFds, 0);
    if (n == static_cast<ssize_t>(sizeof(Refusal)) && reply_len != sizeof(Refusal)) {
      // Its status stands where every answer's does; the reason goes to refusal() and the
      // connection, which the registry will not serve, goes.
      Refusal r;
      std::memcpy(&r, in, sizeof r);
      r.detail[sizeof r.detail - 1] = '\0';
      refusal_ = r.detail;
      ++refusals_;
      std::memcpy(reply, in, reply_len);
      for (int f : got)
        if (f >= 0) ::close(f);
      reset();
      return 0;
    }
    if (n == static_cast<ssize_t>(reply_len)) std::memcpy(reply, in, reply_len);
    if (n != static_cast<ssize_t>(reply_len)) {
      for (int f : got)
        if (f >= 0) ::close(f);
      reset();
      if (n == 0 || n == -ECONNRESET || n == -EPIPE) continue;  // registry restarted
      return n == -EAGAIN ? -ETIMEDOUT : -EPROTO;
    }
    for (int i = 0; i < kReplyFds; ++i) {
      if (fds)
        fds[i] = got[i];
      else if (got[i] >= 0)
        ::close(got[i]);
    }
    return 0;
  }
  return -ECONNREFUSED;
}

}  // namespace fwipc::registry
