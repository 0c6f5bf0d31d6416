// A C++ program on fwipc/channel.hpp and libfwipc.so alone (tests/public_api_test.sh
// builds it with: c++ -std=c++20 hello.cc -Iruntime/include -Lbazel-bin/runtime -lfwipc).
// Exit 0 when send, zero-copy loan/commit, batches and consume all work.
#include <fwipc/channel.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstring>

int main() {
  auto ch = fwipc::Channel::create("hello.cc", IPC_TYPE_QUEUE, 64 * 1024);
  if (!ch) {
    std::fprintf(stderr, "create: %s\n", ipc_strerror(ch.error()));
    return 1;
  }
  if (ch->transport() != fwipc::TransportKind::kShmRing) return 2;
  const char text[] = "span";
  if (ch->send(std::as_bytes(std::span(text, 4)), 1) != 4) return 3;
  auto loan = ch->loan();
  if (!loan) return 4;
  std::memcpy(loan->payload().data(), "loaned", 6);
  if (loan->commit(6, 2) != 6) return 5;
  const fwipc::Channel::OutMessage batch[] = {{std::as_bytes(std::span("b1", 2)), 3},
                                              {std::as_bytes(std::span("b2", 2)), 3}};
  if (ch->send_batch(batch) != 2) return 6;
  std::byte buf[IPC_MAX_PAYLOAD];
  fwipc::MsgHeader h{};
  if (ch->receive(buf, &h, 1000) != 4 || h.type != 1 || h.sender != uint32_t(::getpid())) return 7;
  int seen = 0;
  const int n = ch->consume(
      [&](const fwipc::MsgHeader& m, std::span<const std::byte> p) {
        seen +=
            (m.type == 2 && p.size() == 6 && std::memcmp(p.data(), "loaned", 6) == 0) || (m.type == 3 && p.size() == 2);
      },
      8, 1000);
  if (n != 3 || seen != 3) return 8;
  std::puts("c++ ok");
  return 0;
}
