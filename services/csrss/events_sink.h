// Where csrss's change events go besides its own event log (csrss_events_read()): the
// system event bus (services/events), when csrss is built with it.
#pragma once

#include <cstdint>
#include <string>

namespace csrss {

// Publishes json (or, if it does not fit in one event-bus message, brief) without ever
// waiting: a full bus or no bus is counted, not waited for.
void events_sink_emit(const std::string& topic, const std::string& json, const std::string& brief);

struct SinkStats {
  uint64_t published = 0;
  uint64_t briefed = 0;  // published in the brief form
  uint64_t failed = 0;   // no event bus, or it had no room at once
};
SinkStats events_sink_stats();

}  // namespace csrss
