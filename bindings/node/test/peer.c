/* The C side of the Node binding's tests: a real process on the public C API.
 *
 *   test-peer echo IN OUT SENDER COUNT   read COUNT messages from IN, each must come from
 *                                        PID SENDER; send each back unchanged on OUT
 *   test-peer send OUT COUNT             COUNT messages, message i: type i, i % 513 bytes,
 *                                        byte j = (i + j) & 0xff
 *   test-peer flood OUT COUNT [SIZE]     COUNT messages of SIZE (8..512, default 8) bytes,
 *                                        starting with their little-endian sequence 0..
 *   test-peer serve NAME COUNT           create NAME, answer COUNT calls: the reply's type
 *                                        is the request's + 1, its payload "re:" + request;
 *                                        a call of type 99 is taken and never answered
 *   test-peer call NAME COUNT            COUNT calls "req-I" of type I, each reply must be
 *                                        type I + 1 with payload "re:req-I"
 *
 * Prints "ready" once its channels are open (the tests wait for it), exits 0 on success
 * and non-zero with a message on stderr otherwise. */
#include <ipc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char* what, int rc) {
  fprintf(stderr, "test-peer: %s: %s\n", what, ipc_strerror(rc));
  return 2;
}

static void ready(void) {
  fputs("ready\n", stdout);
  fflush(stdout);
}

static int echo(const char* in_name, const char* out_name, uint32_t sender, long count) {
  int in = ipc_open_channel(in_name, IPC_MODE_READ);
  if (in < 0) return die(in_name, in);
  int out = ipc_open_channel(out_name, IPC_MODE_WRITE);
  if (out < 0) return die(out_name, out);
  ready();
  for (long i = 0; i < count; ++i) {
    IPC_MESSAGE m;
    int rc = ipc_receive_message((uint32_t)in, &m, 20000);
    if (rc < 0) return die("receive", rc);
    if (m.sender != sender) {
      fprintf(stderr, "test-peer: message %ld from pid %u, expected %u\n", i, m.sender, sender);
      return 3;
    }
    m.receiver = 0; /* back to whoever reads OUT */
    if ((rc = ipc_send_message((uint32_t)out, &m)) < 0) return die("send", rc);
  }
  return 0;
}

static int send_pattern(const char* name, long count) {
  int out = ipc_open_channel(name, IPC_MODE_WRITE);
  if (out < 0) return die(name, out);
  ready();
  for (long i = 0; i < count; ++i) {
    char buf[IPC_MAX_PAYLOAD];
    uint32_t n = (uint32_t)(i % 513);
    for (uint32_t j = 0; j < n; ++j) buf[j] = (char)((i + j) & 0xff);
    int rc = ipc_send((uint32_t)out, buf, n, (uint32_t)i);
    if (rc < 0) return die("send", rc);
  }
  return 0;
}

static int flood(const char* name, long count, uint32_t size) {
  int out = ipc_open_channel(name, IPC_MODE_WRITE);
  if (out < 0) return die(name, out);
  if (size < 8 || size > IPC_MAX_PAYLOAD) size = 8;
  ready();
  unsigned char b[IPC_MAX_PAYLOAD] = {0};
  for (long i = 0; i < count; ++i) {
    uint64_t v = (uint64_t)i;
    for (int k = 0; k < 8; ++k) b[k] = (unsigned char)(v >> (8 * k));
    int rc = ipc_send((uint32_t)out, b, size, 7);
    if (rc < 0) return die("send", rc);
  }
  return 0;
}

static int serve(const char* name, long count) {
  int id = ipc_create_channel(name, IPC_TYPE_QUEUE, 0);
  if (id < 0) return die(name, id);
  ready();
  for (long i = 0; i < count; ++i) {
    IPC_MESSAGE req, rep;
    uint64_t call;
    int rc = ipc_receive_request((uint32_t)id, &req, &call, 20000);
    if (rc < 0) return die("receive_request", rc);
    if (req.type == 99) continue; /* the caller's timeout test */
    memset(&rep, 0, sizeof rep);
    rep.type = req.type + 1;
    uint32_t n = req.size + 3 > IPC_MAX_PAYLOAD ? IPC_MAX_PAYLOAD - 3 : req.size;
    memcpy(rep.payload, "re:", 3);
    memcpy(rep.payload + 3, req.payload, n);
    rep.size = n + 3;
    if ((rc = ipc_reply((uint32_t)id, call, &rep)) < 0) return die("reply", rc);
  }
  return ipc_close_channel((uint32_t)id) < 0 ? 2 : 0;
}

static int call(const char* name, long count) {
  int id = ipc_open_channel(name, IPC_MODE_WRITE);
  if (id < 0) return die(name, id);
  ready();
  for (long i = 0; i < count; ++i) {
    IPC_MESSAGE req, rep;
    memset(&req, 0, sizeof req);
    req.type = (uint32_t)i;
    req.size = (uint32_t)snprintf(req.payload, sizeof req.payload, "req-%ld", i);
    int rc = ipc_call((uint32_t)id, &req, &rep, 20000);
    if (rc < 0) return die("call", rc);
    char want[64];
    int wn = snprintf(want, sizeof want, "re:req-%ld", i);
    if (rep.type != (uint32_t)i + 1 || rep.size != (uint32_t)wn || memcmp(rep.payload, want, (size_t)wn) != 0) {
      fprintf(stderr, "test-peer: call %ld: reply type %u '%.*s'\n", i, rep.type, (int)rep.size, rep.payload);
      return 4;
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 6 && strcmp(argv[1], "echo") == 0)
    return echo(argv[2], argv[3], (uint32_t)strtoul(argv[4], NULL, 10), atol(argv[5]));
  if (argc == 4 && strcmp(argv[1], "send") == 0) return send_pattern(argv[2], atol(argv[3]));
  if ((argc == 4 || argc == 5) && strcmp(argv[1], "flood") == 0)
    return flood(argv[2], atol(argv[3]), argc == 5 ? (uint32_t)atol(argv[4]) : 8);
  if (argc == 4 && strcmp(argv[1], "serve") == 0) return serve(argv[2], atol(argv[3]));
  if (argc == 4 && strcmp(argv[1], "call") == 0) return call(argv[2], atol(argv[3]));
  fprintf(stderr,
          "usage: test-peer echo IN OUT SENDER COUNT | send OUT COUNT | flood OUT COUNT [SIZE] |\n"
          "                 serve NAME COUNT | call NAME COUNT\n");
  return 64;
}
