// networkd for real: each test makes two network namespaces joined by a veth pair, runs
// networkd inside the first (its runtime directory an ordinary directory, so this test
// process, which stays in its own namespace, calls it through the path socket as a
// container would), and checks the kernel with `ip -n NS ...`, the resolv.conf file and
// the state file. Namespaces are removed by the fixture's destructor, also on failure.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fwsvc.h"
#include "services/events/fwevent.h"
#include "services/networkd/networkd_ipc.h"
#include "services/networkd/protocol.h"
#include "tests/support.h"

using json = nlohmann::json;

namespace {

using fwipc::test::runfile;
using fwipc::test::wait_exit_within;

// Runs a shell command; its standard output.
std::string sh(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  if (status != nullptr) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Forks and execs argv inside namespace ns (setns on /var/run/netns/NS), stdout/stderr
// to log. Children are forked from this test's main thread and exec at once.
pid_t spawn_in(const std::string& ns, std::vector<std::string> argv, const std::string& log,
               const std::string& notify = "") {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (!ns.empty()) {  // empty: this process's namespace
      const int nsfd = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) ::_exit(126);
    }
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (!notify.empty()) ::setenv("NOTIFY_SOCKET", notify.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// Two namespaces A (networkd, interface eth0) and B (peer0, 192.168.1.1/24), a private
// runtime directory, networkd's state directory and resolv.conf.
struct Net {
  fwipc::test::TempRuntime rt;  // removed, with its registry, after the namespaces
  std::string dir = rt.dir(), a, b;
  pid_t daemon = -1;
  std::vector<pid_t> others;

  Net() {
    static int seq = 0;
    const std::string tag = std::to_string(::getpid()) + "-" + std::to_string(++seq);
    a = "ndt-a-" + tag;
    b = "ndt-b-" + tag;
    int st = 0;
    sh("ip netns add " + a + " && ip netns add " + b + " && ip link add eth0 netns " + a +
           " type veth peer name peer0 netns " + b + " && ip -n " + b + " link set peer0 up && ip -n " + b +
           " addr add 192.168.1.1/24 dev peer0 && ip -n " + a + " link set lo up && ip -n " + b + " link set lo up",
       &st);
    REQUIRE(st == 0);
  }

  ~Net() {
    stop();
    for (pid_t p : others) {
      ::kill(p, SIGTERM);
      wait_exit_within(p, 5000);
    }
    sh("ip netns del " + a + "; ip netns del " + b);
  }

  // Starts networkd in A and waits for READY=1 on a notify socket.
  void start() {
    const fwipc::test::NotifySocket notify;
    daemon = spawn_in(
        a,
        {runfile("services/networkd/networkd"), "--state-dir", dir + "/state", "--resolv-conf", dir + "/resolv.conf"},
        dir + "/networkd.log", notify.path());
    const bool ready = notify.wait_ready(daemon, 20000);
    INFO(read_file(dir + "/networkd.log"));
    REQUIRE(ready);
  }
  // networkd's exit status (0 after SIGTERM: also no sanitizer report at exit).
  int stop(int sig = SIGTERM) {
    if (daemon <= 0) return -1;
    ::kill(daemon, sig);
    const int st = wait_exit_within(daemon, 10000);
    daemon = -1;
    return st;
  }
  std::string ip_a(const std::string& what) { return sh("ip -4 -n " + a + " " + what); }
  std::string state_file() { return read_file(dir + "/state/state.json"); }
  json state() {
    std::vector<char> buf(1 << 20);
    const int rc = networkd_get_state(buf.data(), buf.size());
    REQUIRE_MESSAGE(rc == 0, std::string(networkd_last_error()));
    return json::parse(buf.data());
  }
  std::string netctl(const std::string& args, int* status) {
    return sh(runfile("services/networkd/netctl") + " " + args, status);
  }
};

json find_link(const json& st, const std::string& name) {
  for (const auto& l : st["links"])
    if (l["name"] == name) return l;
  return json();
}

bool has_addr(const json& link, const std::string& addr, const std::string& source) {
  for (const auto& x : link["addresses"])
    if (x["address"] == addr && x["source"] == source) return true;
  return false;
}

// Waits (bounded) until pred() holds.
template <class F>
bool eventually(F pred, int timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace

TEST_CASE("shouldConfigureTheSeedsStaticExampleInTheKernel") {
  Net n;
  n.start();
  // This process is outside networkd's namespace; only the runtime directory is shared.
  CHECK(read_file("/proc/self/ns/net") == read_file("/proc/self/ns/net"));
  char self_ns[64] = {}, daemon_ns[64] = {};
  REQUIRE(::readlink("/proc/self/ns/net", self_ns, sizeof self_ns - 1) > 0);
  REQUIRE(::readlink(("/proc/" + std::to_string(n.daemon) + "/ns/net").c_str(), daemon_ns, sizeof daemon_ns - 1) > 0);
  CHECK(std::string(self_ns) != std::string(daemon_ns));

  // The seed's example, built from examples/static_example.c.
  int rc = -1;
  const std::string printed = sh(runfile("services/networkd/static_example") + " eth0", &rc);
  INFO(printed);
  REQUIRE(rc == 0);
  CHECK(has(printed, R"({"address":"192.168.1.100/24","source":"static"})"));
  CHECK(has(n.ip_a("addr show eth0"), "inet 192.168.1.100/24"));
  CHECK(has(n.ip_a("addr show eth0"), "state UP"));
  CHECK(has(n.ip_a("route"), "default via 192.168.1.1 dev eth0"));
  CHECK(has(sh("ip netns exec " + n.b + " busybox ping -c 1 -W 2 192.168.1.100"), "1 packets received"));

  const json st = n.state();
  const json eth0 = find_link(st, "eth0");
  CHECK(eth0["index"].get<int>() > 0);
  CHECK(eth0["operstate"] == "up");
  CHECK(eth0["setup"] == "configured");
  CHECK(has_addr(eth0, "192.168.1.100/24", "static"));
  bool default_route = false;
  for (const auto& r : st["routes"])
    default_route =
        default_route || (r["dest"] == "0.0.0.0/0" && r["gateway"] == "192.168.1.1" && r["source"] == "static");
  CHECK(default_route);
  CHECK(has(n.state_file(), "192.168.1.100/24"));
  CHECK(networkd_wait_online("eth0", 5000) == 0);
  INFO(read_file(n.dir + "/networkd.log"));
  CHECK(n.stop() == 0);
}

TEST_CASE("shouldAddAndRemoveRoutesWriteDnsAndTakeTheLinkDownAndUp") {
  Net n;
  n.start();
  REQUIRE(networkd_configure_static("eth0", "192.168.1.100", "255.255.255.0", nullptr) == 0);
  CHECK_FALSE(has(n.ip_a("route"), "default"));

  REQUIRE_MESSAGE(networkd_add_route("10.20.0.0/16", "192.168.1.1", "eth0") == 0, std::string(networkd_last_error()));
  CHECK(has(n.ip_a("route"), "10.20.0.0/16 via 192.168.1.1 dev eth0"));
  CHECK(networkd_add_route("10.20.0.0/16", "192.168.1.1", "eth0") == -EEXIST);
  CHECK(has(networkd_last_error(), "dest"));
  REQUIRE(networkd_add_route("172.16.5.0/24", nullptr, "eth0") == 0);  // on-link
  CHECK(has(n.ip_a("route"), "172.16.5.0/24 dev eth0"));
  REQUIRE(networkd_add_route("default", "192.168.1.1", nullptr) == 0);  // the gateway's subnet picks eth0
  CHECK(has(n.ip_a("route"), "default via 192.168.1.1 dev eth0"));
  REQUIRE(networkd_del_route("10.20.0.0/16", "192.168.1.1", "eth0") == 0);
  CHECK_FALSE(has(n.ip_a("route"), "10.20.0.0/16"));
  CHECK(networkd_del_route("10.20.0.0/16", nullptr, nullptr) == -ENOENT);

  const char* servers[] = {"192.168.1.53", "9.9.9.9"};
  REQUIRE(networkd_set_dns(servers, 2) == 0);
  const std::string resolv = read_file(n.dir + "/resolv.conf");
  CHECK(has(resolv, "nameserver 192.168.1.53  # static\nnameserver 9.9.9.9  # static\n"));
  const json st = n.state();
  REQUIRE(st["dns"].size() == 2);
  CHECK(st["dns"][0]["source"] == "static");

  REQUIRE(networkd_link_up("eth0", 0) == 0);
  CHECK(has(n.ip_a("link show eth0"), "state DOWN"));
  CHECK(networkd_wait_online("eth0", 200) == -ETIMEDOUT);
  CHECK(has(networkd_last_error(), "administratively down"));
  REQUIRE(networkd_link_up("eth0", 1) == 0);
  CHECK(has(n.ip_a("link show eth0"), "state UP"));
  // The routes the kernel dropped with the link are back.
  CHECK(has(n.ip_a("route"), "default via 192.168.1.1 dev eth0"));
  CHECK(has(n.ip_a("route"), "172.16.5.0/24 dev eth0"));
  CHECK(networkd_wait_online(nullptr, 5000) == 0);

  int status = -1;
  const std::string out = n.netctl("status", &status);
  CHECK(status == 0);
  CHECK(has(out, "inet 192.168.1.100/24  (static)"));
  CHECK(has(out, "0.0.0.0/0 via 192.168.1.1 dev eth0  (static)"));
  CHECK(has(n.netctl("status --json", &status), "\"operstate\":\"up\""));
  n.netctl("route del 172.16.5.0/24", &status);
  CHECK(status == 0);
  CHECK_FALSE(has(n.ip_a("route"), "172.16.5.0/24"));
}

TEST_CASE("shouldRefuseBadInputByFieldAndChangeNothing") {
  Net n;
  n.start();
  REQUIRE(networkd_configure_static("eth0", "192.168.1.100", "255.255.255.0", "192.168.1.1") == 0);
  const std::string addr0 = n.ip_a("-o addr"), route0 = n.ip_a("route"), state0 = n.state_file();
  const std::string resolv0 = read_file(n.dir + "/resolv.conf");

  struct Case {
    int rc;
    const char* field;
  };
  const std::string long_name(5000, 'x');
  const std::vector<std::pair<int, Case>> cases = {
      {networkd_configure_static("eth0", "192.168.1.300", "255.255.255.0", nullptr), {-EINVAL, "ip:"}},
      {networkd_configure_static("eth0", "192.168.1", "255.255.255.0", nullptr), {-EINVAL, "ip:"}},
      {networkd_configure_static("eth0", "192.168.1.100", "255.0.255.0", nullptr), {-EINVAL, "netmask:"}},
      {networkd_configure_static("eth0", "192.168.1.100", "255.255.255.0", "10.0.0.1"), {-EINVAL, "gateway:"}},
      {networkd_configure_static("nosuch0", "192.168.1.100", "255.255.255.0", nullptr), {-ENODEV, "iface:"}},
      {networkd_configure_static("eth0eth0eth0eth0eth0", "192.168.1.100", "255.255.255.0", nullptr),
       {-ENAMETOOLONG, "iface:"}},
      {networkd_configure_static(long_name.c_str(), "1.2.3.4", "255.0.0.0", nullptr), {-EINVAL, "argument"}},
      {networkd_configure_static(nullptr, "1.2.3.4", "255.0.0.0", nullptr), {-EINVAL, "iface:"}},
      {networkd_add_route("10.0.0.0/8", "172.16.0.1", "eth0"), {-ENETUNREACH, "gateway:"}},
      {networkd_add_route("10.0.0.0/40", "192.168.1.1", "eth0"), {-EINVAL, "dest:"}},
      {networkd_add_route("default", "192.168.1.1", "eth0"), {-EEXIST, "dest:"}},
      {networkd_link_up("nosuch0", 1), {-ENODEV, "iface:"}},
      {networkd_checkpoint(-5), {-ERANGE, "rollback_ms:"}},
      {networkd_add_route("10.50.0.0/16", "192.168.1.1", "eth0"), {0, ""}},
      // That route's gateway would leave eth0's subnets: refused before anything changes.
      {networkd_configure_static("eth0", "192.168.7.100", "255.255.255.0", nullptr), {-ENETUNREACH, "ip:"}},
      {networkd_enable_dhcp("eth0"), {-ENETUNREACH, "iface:"}},
      {networkd_del_route("10.50.0.0/16", nullptr, nullptr), {0, ""}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(i);
    CHECK(cases[i].first == cases[i].second.rc);
  }
  // The reasons, one call at a time (networkd_last_error is the last call's).
  CHECK(networkd_configure_static("eth0", "192.168.1.100", "255.255.255.0", "10.0.0.1") == -EINVAL);
  CHECK(std::string(networkd_last_error()) == "gateway: 10.0.0.1 is outside the subnet 192.168.1.0/24");
  CHECK(networkd_configure_static("eth0", "192.168.1.100", "255.0.255.0", nullptr) == -EINVAL);
  CHECK(has(networkd_last_error(), "netmask: not contiguous"));
  const char* bad_dns[] = {"1.1.1.1", "not-an-ip"};
  CHECK(networkd_set_dns(bad_dns, 2) == -EINVAL);
  CHECK(has(networkd_last_error(), "servers[1]"));

  // Raw frames: garbage, truncated JSON, an unknown method: each an error reply.
  const int ch = fwsvc_open("networkd", 0, IPC_MODE_WRITE);
  REQUIRE(ch >= 0);
  char reply[4096];
  size_t got = 0;
  const std::string truncated = R"({"iface":"eth0","ip":"10.1.1.1","netm)";
  CHECK(fwsvc_call(uint32_t(ch), networkd::kConfigureStatic, truncated.data(), truncated.size(), reply, sizeof reply,
                   &got, 5000) == -EBADMSG);
  CHECK(has(networkd::error_text(reply, got), "not a JSON object"));
  const std::string garbage("\xff\x00\x13garbage\x7f", 11);
  CHECK(fwsvc_call(uint32_t(ch), networkd::kAddRoute, garbage.data(), garbage.size(), reply, sizeof reply, &got,
                   5000) == -EBADMSG);
  const std::string wrong_type = R"({"iface":"eth0","ip":19216801,"netmask":"255.255.255.0"})";
  CHECK(fwsvc_call(uint32_t(ch), networkd::kConfigureStatic, wrong_type.data(), wrong_type.size(), reply, sizeof reply,
                   &got, 5000) == -EINVAL);
  CHECK(networkd::error_text(reply, got) == "ip: not a string");
  CHECK(fwsvc_call(uint32_t(ch), 77, "{}", 2, reply, sizeof reply, &got, 5000) == -ENOSYS);
  ipc_close_channel(uint32_t(ch));

  CHECK(n.ip_a("-o addr") == addr0);
  CHECK(n.ip_a("route") == route0);
  CHECK(n.state_file() == state0);
  CHECK(read_file(n.dir + "/resolv.conf") == resolv0);
  CHECK(networkd_wait_online("eth0", 5000) == 0);  // still serving
  INFO(read_file(n.dir + "/networkd.log"));
  CHECK(n.stop() == 0);
}

TEST_CASE("shouldRefuseChangesFromOtherUsersButAnswerTheirQueries") {
  Net n;
  n.start();
  int status = -1;
  // A copy nobody can execute (the runfiles live under root's 0700 home).
  const std::string netctl = n.dir + "/netctl";
  sh("cp " + runfile("services/networkd/netctl") + " " + netctl + " && chmod 0755 " + netctl);
  // setpriv (util-linux) runs netctl as nobody.
  const std::string as_nobody =
      "setpriv --reuid=65534 --regid=65534 --clear-groups env FWIPC_RUNTIME_DIR=" + n.dir + " ";
  std::string out = sh(as_nobody + netctl + " static eth0 192.168.1.100 255.255.255.0", &status);
  CHECK(status == 1);
  CHECK(has(out, "may not change the network configuration"));
  CHECK_FALSE(has(n.ip_a("addr show eth0"), "192.168.1.100"));
  out = sh(as_nobody + netctl + " status --json", &status);
  CHECK(status == 0);
  CHECK(has(out, "\"name\":\"eth0\""));
}

TEST_CASE("shouldKeepEverythingAcrossRestartsAndReapplyWhatIsMissing") {
  Net n;
  n.start();
  REQUIRE(networkd_configure_static("eth0", "192.168.1.100", "255.255.255.0", "192.168.1.1") == 0);
  REQUIRE(networkd_add_route("10.20.0.0/16", "192.168.1.1", "eth0") == 0);
  const char* servers[] = {"192.168.1.53"};
  REQUIRE(networkd_set_dns(servers, 1) == 0);
  const std::string route0 = n.ip_a("route");

  // ip monitor and a ping from B run across a SIGKILL and a restart of networkd.
  const std::string mon = n.dir + "/monitor";
  n.others.push_back(spawn_in(n.a, {"ip", "monitor", "address", "route"}, mon));
  const std::string ping_log = n.dir + "/ping";
  const pid_t ping = spawn_in(n.b, {"busybox", "ping", "-i", "0.05", "-c", "40", "-W", "2", "192.168.1.100"}, ping_log);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let ping and monitor start
  n.stop(SIGKILL);
  n.start();
  REQUIRE(networkd_wait_online("eth0", 5000) == 0);
  n.stop(SIGTERM);
  n.start();
  REQUIRE(networkd_wait_online("eth0", 5000) == 0);
  CHECK(wait_exit_within(ping, 20000) == 0);
  const std::string pinged = read_file(ping_log);
  INFO(pinged);
  CHECK(has(pinged, "40 packets transmitted, 40 packets received, 0% packet loss"));
  const std::string monitored = read_file(mon);
  INFO(monitored);
  CHECK_FALSE(has(monitored, "Deleted"));
  CHECK_FALSE(has(monitored, "192.168.1.100"));  // not even re-added
  CHECK(n.ip_a("route") == route0);

  // With networkd dead, the address is removed behind its back: a restart puts back
  // the address and the routes that went with it, from the persisted state.
  n.stop(SIGKILL);
  sh("ip -n " + n.a + " addr flush dev eth0");
  CHECK_FALSE(has(n.ip_a("route"), "default"));
  n.start();
  CHECK(has(n.ip_a("addr show eth0"), "inet 192.168.1.100/24"));
  CHECK(n.ip_a("route") == route0);
  CHECK(has(read_file(n.dir + "/resolv.conf"), "nameserver 192.168.1.53"));
}

// The next event of watch w, as "topic json".
std::string next_event(fwevent_watch* w) {
  fwevent_event ev{};
  const int rc = fwevent_watch_next(w, &ev, 10000);
  return rc == 0 ? std::string(ev.topic) + " " + ev.json : "error " + std::to_string(rc);
}

TEST_CASE("shouldRollBackAnUnconfirmedChangeAndKeepAConfirmedOne") {
  Net n;
  // The event bus, in this namespace: networkd publishes system.network.* on it.
  n.others.push_back(spawn_in("", {runfile("services/events/eventsd")}, n.dir + "/eventsd.log"));
  fwevent_watch* w = nullptr;
  REQUIRE(fwevent_watch_open("system.network.>", &w) == 0);
  // The watch rejoins when asked for events (eventsd may not have made the channel yet).
  const bool joined = eventually(
      [&] {
        fwevent_event ev{};
        fwevent_watch_next(w, &ev, 50);
        return fwevent_watch_connected(w) == 1;
      },
      10000);
  INFO(read_file(n.dir + "/eventsd.log"));
  REQUIRE(joined);
  n.start();
  REQUIRE(networkd_configure_static("eth0", "192.168.1.100", "255.255.255.0", nullptr) == 0);
  const std::string state0 = n.state_file();

  REQUIRE(networkd_checkpoint(400) == 0);
  CHECK(networkd_checkpoint(400) == -EBUSY);
  REQUIRE(networkd_configure_static("eth0", "192.168.7.100", "255.255.255.0", "192.168.7.1") == 0);
  REQUIRE(networkd_add_route("10.30.0.0/16", "192.168.7.1", "eth0") == 0);
  CHECK(has(n.ip_a("addr show eth0"), "192.168.7.100/24"));
  CHECK(n.state()["checkpoint"].is_object());
  REQUIRE(eventually([&] { return has(n.ip_a("addr show eth0"), "192.168.1.100/24"); }, 10000));
  CHECK_FALSE(has(n.ip_a("addr show eth0"), "192.168.7.100"));
  CHECK_FALSE(has(n.ip_a("route"), "10.30.0.0/16"));
  CHECK_FALSE(has(n.ip_a("route"), "default"));
  CHECK(n.state()["checkpoint"].is_null());
  CHECK_FALSE(has(n.state_file(), "192.168.7"));
  CHECK(next_event(w) == R"(system.network.static {"address":"192.168.1.100/24","iface":"eth0"})");
  CHECK(next_event(w) == R"(system.network.checkpoint {"rollback_ms":400})");
  CHECK(has(next_event(w), R"(system.network.static {"address":"192.168.7.100/24","gateway":"192.168.7.1")"));
  CHECK(has(next_event(w), "system.network.route.added"));
  CHECK(next_event(w) == "system.network.rolled_back {}");
  fwevent_watch_close(w);

  REQUIRE(networkd_checkpoint(400) == 0);
  REQUIRE(networkd_add_route("10.40.0.0/16", "192.168.1.1", "eth0") == 0);
  REQUIRE(networkd_confirm() == 0);
  CHECK(networkd_confirm() == -ENOENT);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // past the old deadline: nothing may happen
  CHECK(has(n.ip_a("route"), "10.40.0.0/16"));
  CHECK(has(n.state_file(), "10.40.0.0/16"));

  // A pending checkpoint survives a restart of networkd, deadline included.
  REQUIRE(networkd_checkpoint(1500) == 0);
  REQUIRE(networkd_del_route("10.40.0.0/16", nullptr, nullptr) == 0);
  n.stop(SIGKILL);
  n.start();
  REQUIRE(eventually([&] { return has(n.ip_a("route"), "10.40.0.0/16"); }, 10000));
  CHECK(n.state()["checkpoint"].is_null());
}

TEST_CASE("shouldTakeADhcpLeaseFromDnsmasqAndReportIt") {
  Net n;
  n.others.push_back(
      spawn_in(n.b,
               {"dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--interface=peer0", "--bind-interfaces", "--port=0",
                "--dhcp-range=192.168.1.50,192.168.1.99,255.255.255.0,2m", "--dhcp-option=3,192.168.1.1",
                "--dhcp-option=6,192.168.1.53", "--dhcp-leasefile=" + n.dir + "/dnsmasq.leases", "--pid-file="},
               n.dir + "/dnsmasq.log"));
  n.start();
  REQUIRE(networkd_enable_dhcp("eth0") == 0);
  const int rc = networkd_wait_online("eth0", 30000);
  INFO(read_file(n.dir + "/dnsmasq.log"));
  REQUIRE_MESSAGE(rc == 0, std::string(networkd_last_error()));
  const json eth0 = find_link(n.state(), "eth0");
  REQUIRE(eth0["dhcp"].contains("lease"));
  const json lease = eth0["dhcp"]["lease"];
  const std::string addr = lease["address"];
  const int last = std::stoi(addr.substr(addr.rfind('.') + 1));
  CHECK(addr.rfind("192.168.1.", 0) == 0);
  CHECK(last >= 50);
  CHECK(last <= 99);
  CHECK(lease["server"] == "192.168.1.1");
  CHECK(lease["expires_in_s"].get<int>() > 60);
  CHECK(lease["expires_in_s"].get<int>() <= 120);
  CHECK(has_addr(eth0, addr, "dhcp"));
  CHECK(has(n.ip_a("addr show eth0"), "inet " + addr));
  CHECK(has(n.ip_a("route"), "default via 192.168.1.1 dev eth0 proto dhcp metric 1024"));
  CHECK(has(read_file(n.dir + "/resolv.conf"), "nameserver 192.168.1.53  # dhcp"));
  // Static DNS replaces DHCP's, unless merged.
  const char* servers[] = {"9.9.9.9"};
  REQUIRE(networkd_set_dns(servers, 1) == 0);
  CHECK_FALSE(has(read_file(n.dir + "/resolv.conf"), "192.168.1.53"));
  REQUIRE(networkd_set_dns_merge(servers, 1, 1) == 0);
  CHECK(has(read_file(n.dir + "/resolv.conf"), "nameserver 9.9.9.9  # static\nnameserver 192.168.1.53  # dhcp"));

  // A restart keeps the leased address in place (persisted lease, same address asked for).
  const std::string mon = n.dir + "/monitor";
  n.others.push_back(spawn_in(n.a, {"ip", "monitor", "address"}, mon));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  n.stop(SIGKILL);
  n.start();
  REQUIRE(networkd_wait_online("eth0", 10000) == 0);
  CHECK(has(n.ip_a("addr show eth0"), "inet " + addr));
  CHECK_FALSE(has(read_file(mon), "Deleted"));
  INFO(read_file(n.dir + "/networkd.log"));
  CHECK(n.stop() == 0);  // stops its udhcpc too
}
