// fwipc-registryd: the registry daemon of one runtime directory.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/rundir.h"
#include "runtime/registry/server.h"

int main(int argc, char** argv) {
  fwipc::registry::ServerOptions o;
  o.runtime_dir = fwipc::runtime_dir();
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
      o.runtime_dir = argv[++i];
    } else if (std::strcmp(argv[i], "--idle-exit-ms") == 0 && i + 1 < argc) {
      o.idle_exit_ms = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--dir DIR] [--idle-exit-ms MS]\n", argv[0]);
      return 2;
    }
  }
  const int rc = fwipc::registry::run_server(o);
  if (rc == 1) {
    std::fprintf(stderr, "fwipc-registryd: another registry serves %s\n", o.runtime_dir.c_str());
    return 1;
  }
  if (rc < 0) {
    std::fprintf(stderr, "fwipc-registryd: %s: %s\n", o.runtime_dir.c_str(), std::strerror(-rc));
    return 1;
  }
  return 0;
}
