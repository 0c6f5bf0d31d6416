// The README's echo service and client, as built: the service says READY=1 on a notify
// socket the test binds, the client prints what it sent (a short and a multi-fragment
// text), and SIGTERM ends the service with exit status 0.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "service/test_support.h"

using fwsvc::test::runfile;
using fwsvc::test::TempRuntime;
using fwsvc::test::wait_exit;

namespace {

// Runs argv, returns its stdout; *status its exit code.
std::string run(const std::string& exe, const std::string& arg, int* status) {
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    ::execl(exe.c_str(), exe.c_str(), arg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) s.append(buf, size_t(n));
  ::close(out[0]);
  *status = wait_exit(pid, 20000);
  return s;
}

}  // namespace

TEST_CASE("shouldEchoThroughTheExampleServiceAndClient") {
  TempRuntime rt;
  const std::string notify = rt.dir() + "/notify";
  const int nfd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, notify.c_str(), sizeof a.sun_path - 1);
  REQUIRE(::bind(nfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);

  const std::string service = runfile("service/echo_service");
  const pid_t svc = ::fork();
  if (svc == 0) {
    ::setenv("NOTIFY_SOCKET", notify.c_str(), 1);
    ::execl(service.c_str(), service.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  pollfd p{nfd, POLLIN, 0};
  char buf[64] = {};
  REQUIRE(::poll(&p, 1, 10000) == 1);
  REQUIRE(::recv(nfd, buf, sizeof buf - 1, 0) > 0);
  CHECK(std::string(buf) == "READY=1");
  ::close(nfd);

  const std::string client = runfile("service/echo_client");
  int status = -1;
  CHECK(run(client, "hello, world", &status) == "hello, world\n");
  CHECK(status == 0);
  const std::string long_text(3000, 'z');  // seven fragments each way
  CHECK(run(client, long_text, &status) == long_text + "\n");
  CHECK(status == 0);

  ::kill(svc, SIGTERM);
  CHECK(wait_exit(svc, 10000) == 0);
  run(client, "anyone?", &status);
  CHECK(status == 1);  // the channel is gone with its service
}
