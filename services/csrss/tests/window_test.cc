// Windows: records with owner, title, geometry and z-order, their change events seen by
// another process, and a SIGKILLed owner's windows removed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <grp.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fwevent.h"
#include "services/csrss/csrss_ipc.h"
#include "services/csrss/tests/harness.h"

using namespace csrss::test;
using nlohmann::json;

namespace {

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

json windows() {
  std::string buf(1 << 16, '\0');
  const int n = csrss_window_list(buf.data(), buf.size());
  REQUIRE(n >= 0);
  return json::parse(buf.substr(0, size_t(n)));
}

// Events after *seq, waiting (bounded) until at least `want` window events came.
std::vector<json> window_events(uint64_t* seq, size_t want) {
  std::vector<json> out;
  std::string buf(1 << 20, '\0');
  const uint64_t start = now_ms();
  while (out.size() < want && now_ms() - start < 20000) {
    const int n = csrss_events_read(*seq, buf.data(), buf.size());
    REQUIRE(n >= 0);
    if (n == 0) {
      timespec ts{0, 2000000};
      nanosleep(&ts, nullptr);
      continue;
    }
    for (auto& e : json::parse(buf.c_str())) {
      *seq = e["seq"];
      if (e["topic"].get<std::string>().rfind("system.csrss.window.", 0) == 0) out.push_back(e);
    }
  }
  return out;
}

std::vector<int> ids(const json& a) {
  std::vector<int> v;
  for (auto& x : a) v.push_back(x.is_number() ? x.get<int>() : x["id"].get<int>());
  return v;
}

}  // namespace

TEST_CASE("create, move, retitle, raise, destroy: events with the z-order, seen by another process") {
  Runtime rt;
  Daemon d;
  int p[2], q[2];
  REQUIRE(::pipe(p) == 0);
  REQUIRE(::pipe(q) == 0);
  // The owner: a child that makes windows, reports their ids, then waits to be killed.
  const pid_t owner = spawn([&] {
    int w[3];
    w[0] = csrss_window_create("one", 0, 0, 640, 480);
    w[1] = csrss_window_create("two", 10, 10, 320, 200);
    w[2] = csrss_window_create("thr\xc3\xa9\xe2\x82\xac \"q\"", -5, -5, 100, 100);
    if (csrss_window_raise(w[0]) != 0) return 1;
    if (csrss_window_move(w[1], 50, 60, 70, 80) != 0) return 2;
    if (csrss_window_set_title(w[1], "TWO") != 0) return 3;
    if (csrss_window_destroy(w[2]) != 0) return 4;
    if (csrss_window_destroy(w[2]) != -ENOENT) return 5;
    if (::write(p[1], w, sizeof w) != sizeof w) return 6;
    char c;
    (void)!::read(q[0], &c, 1);  // never comes: it is killed
    return 0;
  });
  ::close(p[1]), ::close(q[0]);
  int w[3];
  REQUIRE(::read(p[0], w, sizeof w) == sizeof w);
  uint64_t seq = 0;
  auto ev = window_events(&seq, 7);
  REQUIRE(ev.size() == 7);
  CHECK(ev[0]["topic"] == "system.csrss.window.created");
  CHECK(ids(ev[0]["z_order"]) == std::vector<int>{w[0]});
  CHECK(ev[0]["window"]["pid"] == owner);
  CHECK(ids(ev[2]["z_order"]) == std::vector<int>{w[0], w[1], w[2]});
  CHECK(ev[2]["window"]["title"] == "thr\xc3\xa9\xe2\x82\xac \"q\"");
  CHECK(ev[3]["topic"] == "system.csrss.window.changed");
  CHECK(ids(ev[3]["z_order"]) == std::vector<int>{w[1], w[2], w[0]});  // raised: on top
  CHECK(ev[4]["window"]["x"] == 50);
  CHECK(ev[4]["window"]["h"] == 80);
  CHECK(ev[5]["window"]["title"] == "TWO");
  CHECK(ev[6]["topic"] == "system.csrss.window.destroyed");
  CHECK(ids(ev[6]["z_order"]) == std::vector<int>{w[1], w[0]});
  for (size_t i = 1; i < ev.size(); i++) CHECK(ev[i]["seq"].get<uint64_t>() > ev[i - 1]["seq"].get<uint64_t>());
  // The list: bottom first.
  const json list = windows();
  CHECK(ids(list) == std::vector<int>{w[1], w[0]});
  CHECK(list[0]["title"] == "TWO");
  CHECK(list[1]["w"] == 640);

  // SIGKILL: its windows go, and the events say so.
  ::kill(owner, SIGKILL);
  CHECK(wait_exit(owner) == 128 + SIGKILL);
  ev = window_events(&seq, 2);
  REQUIRE(ev.size() == 2);
  for (auto& e : ev) {
    CHECK(e["topic"] == "system.csrss.window.destroyed");
    CHECK(e["reason"] == "owner exited");
  }
  CHECK(ev[1]["z_order"].empty());
  CHECK(windows().empty());
  ::close(p[0]), ::close(q[1]);
}

TEST_CASE("bad geometry, oversize titles, unknown ids, other owners, the per-process cap") {
  Runtime rt;
  Daemon d({"--max-windows", "3"});
  CHECK(csrss_window_create("t", 0, 0, 0, 10) == -EINVAL);
  CHECK(csrss_window_create("t", 0, 0, 10, -1) == -EINVAL);
  CHECK(csrss_window_create("t", 0, 0, 65536, 10) == -EINVAL);
  CHECK(csrss_window_create("t", 2000000, 0, 10, 10) == -EINVAL);
  CHECK(csrss_window_create(std::string(256, 'x').c_str(), 0, 0, 10, 10) == -EINVAL);
  CHECK(csrss_window_create("bell\a", 0, 0, 10, 10) == -EINVAL);
  CHECK(csrss_window_create(std::string(255, 'x').c_str(), 0, 0, 10, 10) > 0);
  CHECK(csrss_window_move(12345, 0, 0, 10, 10) == -ENOENT);
  CHECK(csrss_window_raise(12345) == -ENOENT);
  CHECK(csrss_window_set_title(12345, "x") == -ENOENT);
  const int mine = csrss_window_create("mine", 0, 0, 10, 10);
  REQUIRE(mine > 0);
  CHECK(csrss_window_move(mine, 0, 0, 0, 10) == -EINVAL);
  CHECK(csrss_window_create("third", 0, 0, 10, 10) > 0);
  CHECK(csrss_window_create("fourth", 0, 0, 10, 10) == -EDQUOT);
  const pid_t other = spawn([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) return 10;
    if (csrss_window_move(mine, 1, 1, 10, 10) != -EPERM) return 1;
    if (csrss_window_destroy(mine) != -EPERM) return 2;
    if (csrss_window_raise(mine) != -EPERM) return 3;
    if (csrss_window_set_title(mine, "stolen") != -EPERM) return 4;
    return csrss_window_create("nobody's", 0, 0, 10, 10) > 0 ? 0 : 5;
  });
  CHECK(wait_exit(other) == 0);
  CHECK(csrss_window_destroy(mine) == 0);
  char small[8];
  CHECK(csrss_window_list(small, sizeof small) == -EMSGSIZE);
}

TEST_CASE("the changes are published on the system event bus (eventsd), with the z-order") {
  Runtime rt;
  Daemon bus({}, "services/events/eventsd");
  REQUIRE(bus.pid() > 0);
  fwevent_watch* watch = nullptr;
  REQUIRE(fwevent_watch_open("system.csrss.>", &watch) == 0);
  const uint64_t start = now_ms();
  while (!fwevent_watch_connected(watch) && now_ms() - start < 20000) {
    fwevent_event e;
    fwevent_watch_next(watch, &e, 50);
  }
  REQUIRE(fwevent_watch_connected(watch) == 1);
  Daemon d;
  const int a = csrss_window_create("a", 0, 0, 10, 10);
  const int b = csrss_window_create("b", 0, 0, 10, 10);
  CHECK(csrss_window_raise(a) == 0);
  CHECK(csrss_window_destroy(b) == 0);
  const char* const argv[] = {"/bin/true", nullptr};
  const int con = csrss_console_create(argv, 24, 80);
  REQUIRE(con > 0);
  std::vector<std::pair<std::string, json>> got;
  while (got.size() < 6 && now_ms() - start < 30000) {
    fwevent_event e;
    if (fwevent_watch_next(watch, &e, 1000) == 0) got.emplace_back(e.topic, json::parse(e.json));
  }
  REQUIRE(got.size() >= 6);
  CHECK(got[0].first == "system.csrss.window.created");
  CHECK(ids(got[1].second["z_order"]) == std::vector<int>{a, b});
  CHECK(got[2].first == "system.csrss.window.changed");
  CHECK(ids(got[2].second["z_order"]) == std::vector<int>{b, a});
  CHECK(got[3].first == "system.csrss.window.destroyed");
  CHECK(ids(got[3].second["z_order"]) == std::vector<int>{a});
  CHECK(got[4].first == "system.csrss.console.created");
  CHECK(got[4].second["console"]["id"] == con);
  CHECK(got[5].first == "system.csrss.console.exited");
  for (size_t i = 1; i < got.size(); i++)
    CHECK(got[i].second["seq"].get<uint64_t>() == got[i - 1].second["seq"].get<uint64_t>() + 1);
  // A window whose event does not fit in one bus message is published in brief.
  const int big = csrss_window_create(std::string(255, '"').c_str(), 0, 0, 10, 10);  // 510 bytes as JSON
  REQUIRE(big > 0);
  fwevent_event e;
  REQUIRE(fwevent_watch_next(watch, &e, 10000) == 0);
  const json j = json::parse(e.json);
  CHECK(j["truncated"] == true);
  CHECK(j["window_id"] == big);
  CHECK(j["z_count"] == 2);
  fwevent_watch_close(watch);
}
