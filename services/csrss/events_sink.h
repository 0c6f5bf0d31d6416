// Where csrss's change events go besides its own event log (csrss_events_read()): the
// system event bus (services/events), when csrss is built with it.
#pragma once

#include <string>

namespace csrss {
void events_sink_emit(const std::string& topic, const std::string& json);
}
