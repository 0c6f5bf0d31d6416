// logctl: asks logd (QUERY/STATS calls through request/reply, never its files).
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fwsvc.h"
#include "nlohmann/json.hpp"
#include "services/logd/text.h"
#include "services/logd/wire.h"

namespace {

constexpr char kUsage[] = R"(usage: logctl COMMAND [options]

Reads the system log through logd (request/reply on the channel logd in
$FWIPC_RUNTIME_DIR); logd answers from the newest records it keeps in memory (100,000 by
default, reloaded from logd.log when it starts).

commands:
  query [-n N] [--level L] [--tag PREFIX] [--pid P] [--since TS] [--json]
        the newest N records (default 100) that match, oldest first: level L and more
        severe (emerg alert crit err warning notice info debug), a tag starting with
        PREFIX, sent by process P, at or after TS (RFC 3339, e.g. 2026-11-25T20:00:00Z)
  tail [-f] [-n N] [--json]
        the newest N records (default 10), oldest first; -f then prints new records as
        they are written, until interrupted (it asks logd every 200 ms)
  stats
        logd's counters as JSON

  --json   print records as JSON Lines, exactly as in logd.log; otherwise one line each:
           TS LEVEL TAG[PID] (COMM): MSG

exit status: 0; 1 when logd cannot be reached or refuses (the reason on stderr); 2 for a
usage error.
)";

int usage_error(const std::string& what) {
  fprintf(stderr, "logctl: %s (logctl --help)\n", what.c_str());
  return 2;
}

volatile sig_atomic_t g_stop = 0;

void print_record(const std::string& line, bool json) {
  if (json) {
    printf("%s\n", line.c_str());
    return;
  }
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) return;
  auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
  const std::string comm = str("comm");
  printf("%s %-7s %s[%lld]%s%s%s: %s\n", str("ts").c_str(), str("level").c_str(), str("tag").c_str(),
         j.contains("pid") && j["pid"].is_number() ? static_cast<long long>(j["pid"].get<int64_t>()) : 0LL,
         comm.empty() ? "" : " (", comm.c_str(), comm.empty() ? "" : ")", str("msg").c_str());
}

// One QUERY; the records' lines, or a negative errno with the reason printed.
int query(int ch, const nlohmann::json& req, std::vector<std::string>* lines) {
  const std::string body = req.dump();
  std::string resp(4u << 20, '\0');
  size_t got = 0;
  const int rc = fwsvc_call(static_cast<uint32_t>(ch), logd::kQuery, body.data(), body.size(), resp.data(), resp.size(),
                            &got, 10000);
  if (rc < 0) {
    fprintf(stderr, "logctl: query: %s%s%.*s\n", ipc_strerror(rc), got ? ": " : "", static_cast<int>(got), resp.data());
    return rc;
  }
  resp.resize(got);
  size_t at = 0;
  while (at < resp.size()) {
    const size_t nl = resp.find('\n', at);
    if (nl == std::string::npos) break;
    lines->push_back(resp.substr(at, nl - at));
    at = nl + 1;
  }
  return 0;
}

bool parse_count(const char* s, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  *out = strtoull(s, &end, 10);
  return errno == 0 && end != s && *end == '\0' && *s != '-';
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("a command is needed: query, tail or stats");
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    fputs(kUsage, stdout);
    return 0;
  }
  if (cmd != "query" && cmd != "tail" && cmd != "stats") return usage_error("unknown command '" + cmd + "'");
  nlohmann::json req = nlohmann::json::object();
  bool json = false, follow = false;
  uint64_t n = cmd == "tail" ? 10 : 100;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    } else if (a == "--json") {
      json = true;
    } else if (a == "-f" && cmd == "tail") {
      follow = true;
    } else if (a == "-n" && cmd != "stats") {
      if (v == nullptr || !parse_count(v, &n) || n > 100000) return usage_error("-n needs a count 0..100000");
      ++i;
    } else if (a == "--level" && cmd == "query") {
      if (v == nullptr || logd::level_from_name(v) < 0)
        return usage_error("--level needs one of emerg alert crit err warning notice info debug");
      req["level"] = logd::level_name(logd::level_from_name(v));
      ++i;
    } else if (a == "--tag" && cmd == "query") {
      if (v == nullptr) return usage_error("--tag needs a prefix");
      req["tag"] = v;
      ++i;
    } else if (a == "--pid" && cmd == "query") {
      uint64_t p = 0;
      if (v == nullptr || !parse_count(v, &p) || p > 0x7fffffff) return usage_error("--pid needs a process id");
      req["pid"] = p;
      ++i;
    } else if (a == "--since" && cmd == "query") {
      int64_t us = 0;
      if (v == nullptr || !logd::parse_rfc3339_us(v, &us))
        return usage_error("--since needs an RFC 3339 time such as 2026-11-25T20:00:00Z");
      req["since"] = v;
      ++i;
    } else {
      return usage_error("unknown argument '" + a + "' for " + cmd);
    }
  }
  const int ch = ipc_open_channel("logd", IPC_MODE_WRITE);
  if (ch < 0) {
    const char* dir = getenv("FWIPC_RUNTIME_DIR");
    fprintf(stderr, "logctl: logd is not reachable in %s: %s\n", dir ? dir : "the default runtime directory",
            ipc_strerror(ch));
    return 1;
  }
  IPC_CHANNEL_INFO info;
  if (ipc_channel_info(static_cast<uint32_t>(ch), &info) == 0 && info.owner_uid != 0 && info.owner_uid != geteuid()) {
    fprintf(stderr, "logctl: the channel logd belongs to uid %u, not to root or to you: not asking it\n",
            info.owner_uid);
    return 1;
  }
  if (cmd == "stats") {
    std::string resp(1 << 16, '\0');
    size_t got = 0;
    const int rc =
        fwsvc_call(static_cast<uint32_t>(ch), logd::kStats, nullptr, 0, resp.data(), resp.size(), &got, 10000);
    if (rc < 0) {
      fprintf(stderr, "logctl: stats: %s\n", ipc_strerror(rc));
      return 1;
    }
    printf("%.*s\n", static_cast<int>(got), resp.data());
    return 0;
  }
  req["n"] = n;
  std::vector<std::string> lines;
  if (query(ch, req, &lines) < 0) return 1;
  uint64_t last = 0;
  auto show = [&](const std::vector<std::string>& ls) {
    for (const auto& l : ls) {
      print_record(l, json);
      auto j = nlohmann::json::parse(l, nullptr, false);
      if (j.is_object() && j.contains("seq") && j["seq"].is_number_unsigned()) last = j["seq"].get<uint64_t>();
    }
    fflush(stdout);
  };
  show(lines);
  if (!follow) return 0;
  signal(SIGINT, [](int) { g_stop = 1; });
  signal(SIGTERM, [](int) { g_stop = 1; });
  signal(SIGPIPE, SIG_IGN);
  while (!g_stop) {
    poll(nullptr, 0, 200);
    nlohmann::json f = {{"n", 100000}, {"after_seq", last}};
    lines.clear();
    if (query(ch, f, &lines) < 0) return 1;
    show(lines);
    if (ferror(stdout)) return 0;  // the reader went away
  }
  return 0;
}
