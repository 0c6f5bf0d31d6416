// ipcctl's commands, each printing to stdout (errors to stderr) and returning the
// process exit status: 0 done, 1 failed. The user's description of each is main.cc's help.
#pragma once

#include <string>

namespace fwipc::ipcctl {

struct Options {
  bool json = false;       // one JSON value (list, clean) or one per line (stat, tail)
  int interval_ms = 1000;  // stat: time between samples
  long count = 0;          // stat: samples, tail: messages; 0: until stopped
  bool all = false;        // tail: start at the oldest message a reader has not read
};

// After this, SIGINT and SIGTERM end stat and tail at their next check, with status 0:
// an interrupted follow is how they are normally stopped.
void stop_on_signals();

int cmd_list(const std::string& dir, const Options& o);
int cmd_stat(const std::string& dir, const std::string& name, const Options& o);
int cmd_stats(const std::string& dir, const std::string& name, const Options& o);
int cmd_tail(const std::string& dir, const std::string& name, const Options& o);
int cmd_clean(const std::string& dir, const Options& o);
int cmd_quota(const std::string& dir, const Options& o);

}  // namespace fwipc::ipcctl
