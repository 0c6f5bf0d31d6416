// csrss's events on the system event bus (fwevent.h, eventsd): one message each, never
// waited for (the daemon must not block on the bus or on its subscribers).
#include <cerrno>

#include "fwevent.h"
#include "services/csrss/events_sink.h"

namespace csrss {
namespace {
SinkStats g_stats;  // the daemon's one thread only
}

void events_sink_emit(const std::string& topic, const std::string& json, const std::string& brief) {
  int rc = fwevent_emit_timeout(topic.c_str(), json.c_str(), 0);
  if (rc == -EMSGSIZE) {
    rc = fwevent_emit_timeout(topic.c_str(), brief.c_str(), 0);
    if (rc >= 0) g_stats.briefed++;
  }
  if (rc >= 0)
    g_stats.published++;
  else
    g_stats.failed++;
}

SinkStats events_sink_stats() { return g_stats; }

}  // namespace csrss
