// The README's echo service and client, as built: the service says READY=1 on a notify
// socket the test binds, the client prints what it sent (a short and a multi-fragment
// text), and SIGTERM ends the service with exit status 0.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <signal.h>

#include <string>

#include "service/test_support.h"

using fwsvc::test::runfile;
using fwsvc::test::TempRuntime;
using fwsvc::test::wait_exit;

namespace {

// Runs exe with one argument: its stdout; *status its exit code.
std::string run(const std::string& exe, const std::string& arg, int* status) {
  const fwipc::test::Run r = fwipc::test::run({exe, arg});
  *status = r.status;
  return r.out;
}

}  // namespace

TEST_CASE("shouldEchoThroughTheExampleServiceAndClient") {
  TempRuntime rt;
  const pid_t svc = fwipc::test::start_ready({runfile("service/echo_service")}, 10000);
  REQUIRE_MESSAGE(svc > 0, "the echo service never said READY=1");

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
