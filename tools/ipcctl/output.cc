// JSON string escaping and aligned tables for ipcctl's output.
#include "tools/ipcctl/output.h"

#include <algorithm>
#include <cstdio>

namespace fwipc::ipcctl {

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      o += '\\';
      o += ch;
    } else if (c < 0x20) {  // JSON forbids raw control characters inside strings
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      o += esc;
    } else {
      o += ch;
    }
  }
  return o + "\"";
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w;
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) {
      if (w.size() <= c) w.push_back(0);
      w[c] = std::max(w[c], r[c].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      line += r[c];
      if (c + 1 < r.size()) line += std::string(w[c] - r[c].size() + 2, ' ');
    }
    std::puts(line.c_str());
  }
}

}  // namespace fwipc::ipcctl
