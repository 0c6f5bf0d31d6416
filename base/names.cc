#include "base/names.h"

#include <cerrno>
#include <cstring>

namespace fwipc {

int validate_channel_name(const char* name) noexcept {
  if (name == nullptr || name[0] == '\0') return -EINVAL;
  size_t n = 0;
  for (const char* p = name; *p; ++p, ++n) {
    if (n >= kNameMax) return -ENAMETOOLONG;
    const unsigned char c = static_cast<unsigned char>(*p);
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return -EINVAL;
  }
  if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) return -EINVAL;
  return 0;
}

}  // namespace fwipc
