#include "service/test_support.h"

#include <cstdlib>

namespace fwsvc::test {

std::string runfile(const std::string& path) {
  const char* src = std::getenv("TEST_SRCDIR");
  return std::string(src != nullptr ? src : ".") + "/freeworld_ipc/" + path;
}

}  // namespace fwsvc::test
