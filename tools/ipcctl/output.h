// The two output shapes every ipcctl command shares: JSON string literals (for --json) and
// tables whose columns line up (for people).
#pragma once

#include <string>
#include <vector>

namespace fwipc::ipcctl {

// s as a quoted JSON string. Channel names cannot need escaping, but the runtime
// directory and user names can hold anything.
std::string json_str(const std::string& s);

// Prints rows to stdout, each column as wide as its widest cell plus two spaces.
void print_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace fwipc::ipcctl
