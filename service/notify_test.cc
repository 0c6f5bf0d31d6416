// fwsvc_notify() against real datagram sockets bound by the test, the way systemd
// listens on $NOTIFY_SOCKET: a path, and an abstract name.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "fwsvc.h"

namespace {

// A bound SOCK_DGRAM socket; name starting with '@' is abstract.
int bind_dgram(const std::string& name) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, name.data(), name.size());
  socklen_t len = offsetof(sockaddr_un, sun_path) + name.size();
  if (name[0] == '@') {
    a.sun_path[0] = '\0';
  } else {
    ++len;
  }
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), len) == 0);
  return fd;
}

std::string receive(int fd) {
  char buf[256];
  const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  return n < 0 ? std::string("<nothing>") : std::string(buf, size_t(n));
}

}  // namespace

TEST_CASE("shouldDoNothingWithoutNotifySocket") {
  ::unsetenv("NOTIFY_SOCKET");
  CHECK(fwsvc_notify("READY=1") == 0);
  ::setenv("NOTIFY_SOCKET", "", 1);
  CHECK(fwsvc_notify("READY=1") == 0);
}

TEST_CASE("shouldSendReadyToAPathSocket") {
  char dir[] = "/tmp/fwsvc-notify-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/notify";
  const int fd = bind_dgram(path);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  CHECK(fwsvc_notify("READY=1") == 1);
  CHECK(receive(fd) == "READY=1");
  CHECK(fwsvc_notify("STATUS=serving\nRELOADING=1") == 1);  // several assignments, one datagram
  CHECK(receive(fd) == "STATUS=serving\nRELOADING=1");
  ::close(fd);
  ::unlink(path.c_str());
  CHECK(fwsvc_notify("READY=1") < 0);  // nobody listens any more: an error, not a crash
  ::rmdir(dir);
  ::unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("shouldSendReadyToAnAbstractSocket") {
  const std::string name = "@fwsvc-notify-test-" + std::to_string(::getpid());
  const int fd = bind_dgram(name);
  ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  CHECK(fwsvc_notify("READY=1") == 1);
  CHECK(receive(fd) == "READY=1");
  ::close(fd);
  ::unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("shouldRefuseARelativeOrOverlongSocketName") {
  ::setenv("NOTIFY_SOCKET", "relative/notify", 1);
  CHECK(fwsvc_notify("READY=1") == -EINVAL);
  ::setenv("NOTIFY_SOCKET", ("/" + std::string(200, 'a')).c_str(), 1);
  CHECK(fwsvc_notify("READY=1") == -EINVAL);
  ::unsetenv("NOTIFY_SOCKET");
  CHECK(fwsvc_notify(nullptr) == -EINVAL);
}
