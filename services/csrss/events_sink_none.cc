// Built without the system event bus: events stay in csrss's own log only.
#include "services/csrss/events_sink.h"

namespace csrss {
void events_sink_emit(const std::string&, const std::string&) {}
}  // namespace csrss
