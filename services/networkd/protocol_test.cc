// Unit tests of what networkd decides without the kernel: IPv4 forms, netmasks, the
// request decoders' per-field refusals, the udhcpc hook line, the state file, the DNS rule.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include "services/networkd/config.h"
#include "services/networkd/protocol.h"

using namespace networkd;

namespace {

FieldError refusal(uint32_t method, const std::string& body) {
  FieldError e;
  const auto r = decode_request(method, body.data(), body.size(), &e);
  CHECK_FALSE(r.has_value());
  return e;
}

}  // namespace

TEST_CASE("shouldParseOnlyStrictDottedQuads") {
  CHECK(parse_ipv4("192.168.1.100") == 0xC0A80164u);
  CHECK(parse_ipv4("0.0.0.0") == 0u);
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "1..2.3", "a.b.c.d",
                          "1.2.3.-4", "1.2.3.4/24", "1234.1.1.1"})
    CHECK_MESSAGE(!parse_ipv4(bad), bad);
  CHECK(looks_ipv6("fe80::1"));
  CHECK_FALSE(looks_ipv6("1.2.3"));
}

TEST_CASE("shouldAcceptOnlyContiguousNetmasks") {
  CHECK(mask_to_prefix(0xFFFFFF00u) == 24);
  CHECK(mask_to_prefix(0xFFFFFFFFu) == 32);
  CHECK(mask_to_prefix(0u) == 0);
  CHECK_FALSE(mask_to_prefix(0xFF00FF00u));  // 255.0.255.0
  CHECK_FALSE(mask_to_prefix(0x00FFFFFFu));
}

TEST_CASE("shouldParseCidrsAndRefuseHostBits") {
  Cidr c;
  CHECK(parse_cidr("10.0.0.0/8", &c) == CidrError::kNone);
  CHECK(c == Cidr{0x0A000000u, 8});
  CHECK(parse_cidr("default", &c) == CidrError::kNone);
  CHECK(c == Cidr{});
  CHECK(parse_cidr("10.0.0.1/8", &c) == CidrError::kHostBits);
  CHECK(parse_cidr("10.0.0.0/33", &c) == CidrError::kPrefix);
  CHECK(parse_cidr("10.0.0.0/", &c) == CidrError::kPrefix);
  CHECK(parse_cidr("10.0.0/8", &c) == CidrError::kMalformed);
}

TEST_CASE("shouldDecodeTheSeedsStaticRequest") {
  const std::string body = R"({"iface":"eth0","ip":"192.168.1.100","netmask":"255.255.255.0","gateway":"192.168.1.1"})";
  FieldError e;
  const auto r = decode_request(kConfigureStatic, body.data(), body.size(), &e);
  REQUIRE(r.has_value());
  const auto& s = std::get<StaticReq>(*r);
  CHECK(s.iface == "eth0");
  CHECK(s.prefix == 24);
  CHECK(s.gateway == 0xC0A80101u);
}

TEST_CASE("shouldRefuseEachBadFieldByName") {
  auto e = refusal(kConfigureStatic, R"({"iface":"eth0","ip":"192.168.1.300","netmask":"255.255.255.0"})");
  CHECK(e.field == "ip");
  CHECK(e.code == EINVAL);
  e = refusal(kConfigureStatic, R"({"iface":"eth0","ip":"192.168.1.10","netmask":"255.0.255.0"})");
  CHECK(e.field == "netmask");
  CHECK(e.reason.find("contiguous") != std::string::npos);
  e = refusal(kConfigureStatic,
              R"({"iface":"eth0","ip":"192.168.1.10","netmask":"255.255.255.0","gateway":"10.0.0.1"})");
  CHECK(e.field == "gateway");
  CHECK(e.reason.find("outside the subnet 192.168.1.0/24") != std::string::npos);
  e = refusal(kConfigureStatic, R"({"iface":"eth0","ip":"192.168.1.255","netmask":"255.255.255.0"})");
  CHECK(e.field == "ip");
  e = refusal(kConfigureStatic, R"({"iface":"eth0","ip":"fe80::1","netmask":"255.255.255.0"})");
  CHECK(e.code == EAFNOSUPPORT);
  e = refusal(kConfigureStatic, R"({"iface":"a-very-long-interface-name","ip":"1.2.3.4","netmask":"255.0.0.0"})");
  CHECK(e.field == "iface");
  CHECK(e.code == ENAMETOOLONG);
  e = refusal(kConfigureStatic, R"({"iface":"eth0","ip":"1.2.3.4","netmask":"255.0.0.0","gw":"1.2.3.5"})");
  CHECK(e.field == "gw");
  CHECK(e.reason == "unknown field");
  e = refusal(kConfigureStatic, R"({"iface":"eth0","netmask":"255.0.0.0"})");
  CHECK(e.field == "ip");
  CHECK(e.reason == "missing");
  e = refusal(kAddRoute, R"({"dest":"10.0.0.1/8","gateway":"192.168.1.1"})");
  CHECK(e.field == "dest");
  e = refusal(kAddRoute, R"({"dest":"10.0.0.0/8"})");
  CHECK(e.field == "gateway");
  e = refusal(kSetDns, R"({"servers":["1.1.1.1","1.1.1.1"]})");
  CHECK(e.field == "servers[1]");
  e = refusal(kSetDns, R"({"servers":["1.1.1.1","1.1.1.1.1"]})");
  CHECK(e.field == "servers[1]");
  e = refusal(kCheckpoint, R"({"rollback_ms":0})");
  CHECK(e.field == "rollback_ms");
  e = refusal(kLinkUp, R"({"iface":"eth0","up":"yes"})");
  CHECK(e.field == "up");
}

TEST_CASE("shouldRefuseGarbageAndTruncatedBodies") {
  for (const std::string bad : {std::string("{\"iface\":\"eth0\",\"ip\":\"1.2"), std::string("\x01\x02garbage", 9),
                                std::string(""), std::string("[1,2]"), std::string("null")}) {
    const auto e = refusal(kConfigureStatic, bad);
    CHECK(e.code == EBADMSG);
  }
  const std::string huge(kMaxBodyBytes + 1, ' ');
  CHECK(refusal(kSetDns, huge).code == EMSGSIZE);
  CHECK(refusal(99, "{}").code == ENOSYS);
  const std::string enc = encode_error(FieldError{EINVAL, "gateway", "outside"});
  CHECK(error_text(enc.data(), enc.size()) == "gateway: outside");
}

TEST_CASE("shouldDecodeTheHooksLeaseLine") {
  std::string why;
  const auto ev = decode_hook_event(
      R"({"event":"bound","interface":"eth0","ip":"10.77.0.60","subnet":"255.255.255.0","router":"10.77.0.1 10.77.0.2","dns":"10.77.0.53","serverid":"10.77.0.1","lease":"120"})",
      &why);
  REQUIRE(ev.has_value());
  CHECK(ev->prefix == 24);
  CHECK(ev->routers.size() == 2);
  CHECK(ev->lease_s == 120);
  CHECK_FALSE(decode_hook_event(
      R"({"event":"bound","interface":"eth0","ip":"10.77.0.60","subnet":"255.0.255.0","lease":"1"})", &why));
  CHECK_FALSE(decode_hook_event(
      R"({"event":"bound","interface":"eth0","ip":"10.77.0.60","subnet":"255.255.255.0","lease":"-1"})", &why));
  CHECK(decode_hook_event(R"({"event":"deconfig","interface":"eth0"})", &why).has_value());
}

TEST_CASE("shouldRoundTripTheStateFile") {
  Config c;
  c.links["eth0"] = LinkConfig{true, false, Cidr{0xC0A80164u, 24}, 0xC0A80101u};
  c.links["eth1"] = LinkConfig{std::nullopt, true, std::nullopt, std::nullopt};
  c.routes.push_back(RouteConfig{Cidr{0x0A000000u, 8}, 0xC0A80101u, "eth0"});
  c.dns = {0x01010101u};
  Config back;
  std::string why;
  REQUIRE(from_json(nlohmann::json::parse(to_json(c).dump()), &back, &why));
  CHECK(back == c);
  Leases l;
  l["eth1"] = Lease{0x0A4D003Cu, 24, 0x0A4D0001u, 0x0A4D0001u, {0x0A4D0035u}, 100, 220};
  Leases lb;
  REQUIRE(from_json(nlohmann::json::parse(to_json(l).dump()), &lb, &why));
  CHECK(lb == l);
  const Wanted w = wanted(c, l);
  CHECK(w.addrs.size() == 2);
  CHECK(w.routes.size() == 3);  // eth0's default, eth1's DHCP default, 10.0.0.0/8
}

TEST_CASE("shouldLetStaticDnsReplaceDhcpUnlessMerged") {
  Config c;
  c.links["eth1"].dhcp = true;
  Leases l;
  l["eth1"].dns = {0x0A4D0035u};
  CHECK(dns_servers(c, l).size() == 1);
  CHECK(std::string(dns_servers(c, l)[0].source) == "dhcp");
  c.dns = {0x01010101u};
  REQUIRE(dns_servers(c, l).size() == 1);
  CHECK(std::string(dns_servers(c, l)[0].source) == "static");
  c.dns_merge = true;
  REQUIRE(dns_servers(c, l).size() == 2);
  CHECK(resolv_conf_text(dns_servers(c, l)).find("nameserver 10.77.0.53  # dhcp") != std::string::npos);
}
