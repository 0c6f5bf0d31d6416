// The client's protocol (call.cc) against the Dispatcher in one process, no runtime in
// between: bodies of every size around the fragment boundaries both ways, statuses,
// refusals, the reply contract of handlers, and one deadline over the whole call.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "service/call.h"
#include "service/dispatch.h"

using namespace fwsvc;

namespace {

constexpr uint32_t kEcho = 1;
constexpr uint32_t kReverse = 2;
constexpr uint32_t kCallerPid = 4242;

struct Server {
  Dispatcher d;
  int handled = 0;
  uint32_t last_sender = 0;
  int sleep_us = 0;  // per exchange, to spend the caller's time
  explicit Server(Limits l = {}) : d(l) {}
};

int exchange(void* ctx, const IPC_MESSAGE* req, IPC_MESSAGE* reply, int) {
  auto* s = static_cast<Server*>(ctx);
  if (s->sleep_us > 0) ::usleep(useconds_t(s->sleep_us));
  s->d.handle(kCallerPid, *req, reply, 0);
  return int(reply->size);
}

void echo(void* ctx, const fwsvc_request* req) {
  auto* s = static_cast<Server*>(ctx);
  ++s->handled;
  s->last_sender = req->sender_pid;
  CHECK(fwsvc_reply(req, int32_t(req->body_len % 1000), req->body, req->body_len) == 0);
}

void reverse(void* ctx, const fwsvc_request* req) {
  ++static_cast<Server*>(ctx)->handled;
  const auto* b = static_cast<const uint8_t*>(req->body);
  std::vector<uint8_t> r(b, b + req->body_len);
  std::reverse(r.begin(), r.end());
  CHECK(fwsvc_reply(req, 0, r.data(), r.size()) == 0);
}

std::vector<uint8_t> body(size_t n) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(i * 7 + n);
  return b;
}

int call(Server& s, uint32_t method, const std::vector<uint8_t>& req, std::vector<uint8_t>* resp, size_t cap,
         int timeout_ms = 1000) {
  resp->assign(cap, 0);
  size_t len = 0;
  const int rc = call_with(exchange, &s, method, req.data(), req.size(), resp->data(), cap, &len, timeout_ms);
  resp->resize(std::min(len, cap));
  return rc;
}

}  // namespace

TEST_CASE("shouldCarryBodiesOfEverySizeAroundTheFragmentBoundariesIntactBothWays") {
  Server s;
  REQUIRE(s.d.add_method(kEcho, echo, &s) == 0);
  REQUIRE(s.d.add_method(kReverse, reverse, &s) == 0);
  const size_t f = kFragmentDataBytes;
  for (size_t n : {size_t(0), size_t(1), f - 1, f, f + 1, size_t(512), size_t(513), 2 * f, 2 * f + 1, size_t(65536)}) {
    CAPTURE(n);
    const auto b = body(n);
    std::vector<uint8_t> r;
    CHECK(call(s, kEcho, b, &r, 70000) == int(n % 1000));
    CHECK(r == b);
    CHECK(call(s, kReverse, b, &r, 70000) == 0);
    CHECK(std::equal(r.begin(), r.end(), b.rbegin(), b.rend()));
  }
  CHECK(s.handled == 20);
  CHECK(s.last_sender == kCallerPid);
  CHECK(s.d.held() == 0);  // every reply fetched to its end
}

TEST_CASE("shouldAnswerAnUnknownMethodEnosysWithoutRunningAHandler") {
  Server s;
  REQUIRE(s.d.add_method(kEcho, echo, &s) == 0);
  CHECK(s.d.add_method(kEcho, echo, &s) == -EEXIST);
  std::vector<uint8_t> r;
  CHECK(call(s, 99, body(3), &r, 100) == -ENOSYS);
  CHECK(call(s, 99, body(5000), &r, 100) == -ENOSYS);  // refused at the first fragment
  CHECK(s.handled == 0);
  CHECK(s.d.held() == 0);
  CHECK(s.d.table_stats().unknown_method == 2);
}

TEST_CASE("shouldReportTheNeededLengthWhenTheReplyDoesNotFitAndLetTheServiceForgetIt") {
  Server s;
  REQUIRE(s.d.add_method(kEcho, echo, &s) == 0);
  for (size_t n : {size_t(100), size_t(3000)}) {
    const auto b = body(n);
    std::vector<uint8_t> r(10);
    size_t len = 0;
    CHECK(call_with(exchange, &s, kEcho, b.data(), b.size(), r.data(), r.size(), &len, 1000) == -EMSGSIZE);
    CHECK(len == n);
    CHECK(s.d.held() == 0);  // a kept rest was cancelled
  }
  CHECK(s.handled == 2);  // the handler did run
}

TEST_CASE("shouldRefuseARequestOverTheServicesLimitWithoutRunningTheHandler") {
  Limits l;
  l.max_body_bytes = 1000;
  Server s(l);
  REQUIRE(s.d.add_method(kEcho, echo, &s) == 0);
  std::vector<uint8_t> r;
  CHECK(call(s, kEcho, body(1001), &r, 2000) == -EMSGSIZE);
  CHECK(call(s, kEcho, body(1000), &r, 2000) == 0);
  CHECK(s.handled == 1);
}

namespace {

struct Contract {
  int first = 1;
  int second = 1;
  int oversize = 1;
};

void reply_twice(void* ctx, const fwsvc_request* req) {
  auto* c = static_cast<Contract*>(ctx);
  c->first = fwsvc_reply(req, 1, nullptr, 0);
  c->second = fwsvc_reply(req, 2, "x", 1);
}

void too_big_then_small(void* ctx, const fwsvc_request* req) {
  auto* c = static_cast<Contract*>(ctx);
  std::vector<uint8_t> big(2001);
  c->oversize = fwsvc_reply(req, 0, big.data(), big.size());
  c->first = fwsvc_reply(req, 3, "ok", 2);
}

void forget_to_reply(void*, const fwsvc_request*) {}

}  // namespace

TEST_CASE("shouldAnswerEveryCallExactlyOnceWhateverTheHandlerDoes") {
  Limits l;
  l.max_body_bytes = 2000;
  Server s(l);
  Contract twice, big;
  REQUIRE(s.d.add_method(1, reply_twice, &twice) == 0);
  REQUIRE(s.d.add_method(2, too_big_then_small, &big) == 0);
  REQUIRE(s.d.add_method(3, forget_to_reply, nullptr) == 0);
  std::vector<uint8_t> r;
  CHECK(call(s, 1, {}, &r, 10) == 1);  // the first reply counts
  CHECK(r.empty());
  CHECK(twice.first == 0);
  CHECK(twice.second == -EALREADY);
  CHECK(call(s, 2, {}, &r, 10) == 3);
  CHECK(big.oversize == -EMSGSIZE);  // nothing sent: the handler could answer again
  CHECK(big.first == 0);
  CHECK(r == std::vector<uint8_t>{'o', 'k'});
  CHECK(call(s, 3, {}, &r, 10) == -EIO);
  CHECK(fwsvc_reply(nullptr, 0, nullptr, 0) == -EINVAL);
}

TEST_CASE("shouldBoundTheWholeCallByOneTimeout") {
  Server s;
  REQUIRE(s.d.add_method(kEcho, echo, &s) == 0);
  s.sleep_us = 20000;  // 20 ms per exchange; 10 exchanges each way for 4.9 KB
  std::vector<uint8_t> r;
  CHECK(call(s, kEcho, body(10 * kFragmentDataBytes), &r, 10000, 100) == -ETIMEDOUT);
  s.sleep_us = 0;
  CHECK(s.d.held() == 1);  // the incomplete request waits for expiry
  s.d.expire(1000000);
  CHECK(s.d.held() == 0);
  CHECK(s.d.table_stats().expired == 1);
}

namespace {

int broken_pipe(void*, const IPC_MESSAGE*, IPC_MESSAGE*, int) { return -EPIPE; }

int wrong_transfer(void*, const IPC_MESSAGE*, IPC_MESSAGE* reply, int) {
  reply->size = uint32_t(encode(reinterpret_cast<uint8_t*>(reply->payload), kReply, 0, 12345, 0, 0));
  return int(reply->size);
}

}  // namespace

TEST_CASE("shouldPassTransportErrorsThroughAndRefuseAReplyToAnotherCall") {
  char buf[8];
  size_t len = 99;
  CHECK(call_with(broken_pipe, nullptr, 1, "a", 1, buf, sizeof buf, &len, 100) == -EPIPE);
  CHECK(len == 0);
  CHECK(call_with(wrong_transfer, nullptr, 1, "a", 1, buf, sizeof buf, &len, 100) == -EPROTO);
  CHECK(call_with(broken_pipe, nullptr, 1, nullptr, 1, buf, sizeof buf, &len, 100) == -EINVAL);
}

TEST_CASE("shouldFillDefaultOptions") {
  fwsvc_options o;
  fwsvc_options_init(&o);
  CHECK(o.type == IPC_TYPE_QUEUE);
  CHECK(o.perm_mode == 0660);
  const Limits l = limits_from(o);
  CHECK(l.max_body_bytes == 1u << 20);
  fwsvc_options z{};
  CHECK(limits_from(z).max_transfers == Limits{}.max_transfers);
}
