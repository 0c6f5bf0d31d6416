#include "services/csrss/tests/harness.h"

#include <signal.h>

namespace csrss::test {

Daemon::Daemon(std::vector<std::string> args, const std::string& program) {
  args.insert(args.begin(), runfile(program));
  pid_ = fwipc::test::start_ready(args, 60000);
}

int Daemon::stop() {
  if (pid_ < 0) return -1;
  ::kill(pid_, SIGTERM);
  const int st = wait_exit(pid_, 20000);
  pid_ = -1;
  return st;
}

Daemon::~Daemon() { stop(); }

}  // namespace csrss::test
