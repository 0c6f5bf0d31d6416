// csrssctl: the commands, and `attach` driven interactively inside tmux (send-keys,
// capture-pane), as a person at a terminal would.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "services/csrss/tests/harness.h"

using namespace csrss::test;

namespace {

const std::string& ctl() {
  static const std::string p = runfile("services/csrss/csrssctl");
  return p;
}

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// Polls `probe` until it returns true, within an anti-hang bound.
template <class F>
bool eventually(F probe, int bound_ms = 20000) {
  const uint64_t start = now_ms();
  while (now_ms() - start < uint64_t(bound_ms)) {
    if (probe()) return true;
    timespec ts{0, 20000000};
    nanosleep(&ts, nullptr);
  }
  return probe();
}

bool has(const std::string& s, const std::string& w) { return s.find(w) != std::string::npos; }

}  // namespace

TEST_CASE("new, send, capture, list, resize, wait, close, --help, bad usage") {
  Runtime rt;
  Daemon d;
  Run r = run({ctl(), "--help"});
  CHECK(r.status == 0);
  CHECK(has(r.out, "attach ID"));
  CHECK(has(r.out, "Ctrl-] then d detaches"));
  CHECK(run({ctl(), "frobnicate"}).status == 2);
  CHECK(run({ctl(), "new"}).status == 2);
  CHECK(run({ctl(), "new", "--rows", "0", "--", "/bin/sh"}).status == 2);
  CHECK(run({ctl(), "new", "--", "/nonexistent"}).status == 1);
  CHECK(run({ctl(), "send", "999", "x"}).status == 1);

  r = run({ctl(), "new", "--rows", "30", "--cols", "90", "--", "/bin/sh"});
  REQUIRE(r.status == 0);
  const std::string id = r.out.substr(0, r.out.find('\n'));
  CHECK(run({ctl(), "send", id, "echo sent-$((40+2))\\n"}).status == 0);
  CHECK(eventually([&] { return has(run({ctl(), "capture", id}).out, "sent-42\r\n"); }));
  r = run({ctl(), "list"});
  CHECK(r.status == 0);
  auto list = nlohmann::json::parse(r.out);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["rows"] == 30);
  CHECK(list[0]["cols"] == 90);
  CHECK(run({ctl(), "resize", id, "12", "34"}).status == 0);
  CHECK(run({ctl(), "send", id, "stty size\\n"}).status == 0);
  CHECK(eventually([&] { return has(run({ctl(), "capture", id}).out, "12 34\r\n"); }));
  CHECK(run({ctl(), "wait", id, "0"}).status == 1);  // still running: timed out
  CHECK(run({ctl(), "send", id, "exit 7\\n"}).status == 0);
  r = run({ctl(), "wait", id, "10000"});
  CHECK(r.status == 7);
  CHECK(r.out == "7\n");
  CHECK(run({ctl(), "close", id}).status == 0);  // ended, but not closed yet
  r = run({ctl(), "events"});
  CHECK(has(r.out, "system.csrss.console.created"));
  CHECK(has(r.out, "system.csrss.console.exited"));
}

TEST_CASE("csrssctl attach inside tmux: typed input reaches the program, output is on the screen, detach works") {
  REQUIRE_MESSAGE(::access("/usr/bin/tmux", X_OK) == 0, "this test drives tmux: apt-get install tmux");
  Runtime rt;
  Daemon d;
  Run r = run({ctl(), "new", "--", "/bin/sh"});
  REQUIRE(r.status == 0);
  const std::string id = r.out.substr(0, r.out.find('\n'));
  const std::string sock = rt.dir() + "/tmux.sock";
  auto tmux = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"tmux", "-S", sock, "-f", "/dev/null"});
    return run(args);
  };
  REQUIRE(tmux({"new-session", "-d", "-x", "100", "-y", "30", "-e", std::string("FWIPC_RUNTIME_DIR=") + rt.dir(),
                ctl() + " attach " + id + "; sleep 30"})
              .status == 0);
  auto screen = [&] { return tmux({"capture-pane", "-p"}).out; };
  // The pane's size went through to the console.
  CHECK(eventually([&] {
    auto l = nlohmann::json::parse(run({ctl(), "list"}).out);
    return l.size() == 1 && l[0]["rows"] == 30 && l[0]["cols"] == 100 && l[0]["readers"] == 1;
  }));
  CHECK(tmux({"send-keys", "echo typed-$((2+3))", "Enter"}).status == 0);
  CHECK(eventually([&] { return has(screen(), "typed-5"); }));
  CHECK(tmux({"send-keys", "stty size", "Enter"}).status == 0);
  CHECK(eventually([&] { return has(screen(), "30 100"); }));
  // Ctrl-] d detaches; the console goes on.
  CHECK(tmux({"send-keys", "C-]", "d"}).status == 0);
  CHECK(eventually([&] { return has(screen(), "detached from console " + id); }));
  auto l = nlohmann::json::parse(run({ctl(), "list"}).out);
  CHECK(l[0]["running"] == true);
  CHECK(eventually([&] { return nlohmann::json::parse(run({ctl(), "list"}).out)[0]["readers"] == 0; }));
  tmux({"kill-server"});
  CHECK(run({ctl(), "close", id}).status == 0);
}
