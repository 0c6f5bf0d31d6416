// The C++ event bus over fwevent.h (SPEC section 5): EventBus (emit/on/off/once with
// topic wildcards) and EventManager (routes the security, system and error categories to
// a sink such as logd, mapping each event to a log record). Events cross processes and
// languages: a C program, this class and the Node package see each other's events.
//
// Handlers run on the fwevent library's thread, one at a time; they may call on(), off(),
// once() and emit(). Failures are values (negative errnos), never exceptions.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace fwevent {

struct Event {
  std::string topic;
  nlohmann::json data;  // the event's JSON value
  pid_t sender = 0;     // the emitter's PID, stamped by the runtime
  uint32_t gap = 0;     // > 0: events may be missing before this one (see fwevent.h)
};

using Handler = std::function<void(const Event&)>;

class EventBus {
 public:
  EventBus() = default;
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;
  ~EventBus();  // removes every listener this bus added

  // 0, or fwevent_emit()'s error: -EINVAL (topic), -EMSGSIZE, -ENOENT (no eventsd), -EAGAIN.
  [[nodiscard]] int emit(std::string_view topic, const nlohmann::json& data);
  // The same with JSON text (validated and re-serialised).
  [[nodiscard]] int emit_json(std::string_view topic, std::string_view json);

  // Calls fn for every matching event from now on: a listener id (> 0) or -EINVAL.
  [[nodiscard]] int on(std::string_view pattern, Handler fn);
  // As on(), removed after its first event (before fn runs).
  [[nodiscard]] int once(std::string_view pattern, Handler fn);
  // Removes one listener: once it returns its handler is not running and will not run.
  int off(int listener_id);
  // Removes every listener of this bus on exactly this pattern; how many.
  int off(std::string_view pattern);

  size_t listener_count() const;

 private:
  struct Listener;
  static void trampoline(void* ctx, const void* ev);
  int add(std::string_view pattern, Handler fn, bool once);

  mutable std::mutex mu_;
  std::map<int, std::shared_ptr<Listener>> listeners_;  // by fwevent subscription id
};

// What a forwarded event becomes in the system log (issue 13): tag = the first segment,
// event = the whole topic, data = the event's JSON, level err (error.*), notice
// (security.*) or info (system.*), pid = the emitter's.
struct LogRecord {
  std::string level;
  std::string tag;
  std::string event;
  nlohmann::json data;
  pid_t pid = 0;
};

// The categories the EventManager forwards: security.>, system.>, error.>.
inline constexpr const char* kForwardedPatterns[] = {"security.>", "system.>", "error.>"};

// Maps an event to its log record; false for a topic outside the forwarded categories.
bool to_log_record(const Event& ev, LogRecord* out);

class EventManager {
 public:
  using Sink = std::function<void(const LogRecord&, const Event&)>;
  explicit EventManager(EventBus& bus) : bus_(bus) {}
  EventManager(const EventManager&) = delete;
  EventManager& operator=(const EventManager&) = delete;
  ~EventManager() { stop(); }

  // Starts forwarding security, system and error events to sink (one listener each).
  // 0, or the first error (nothing is left subscribed then). -EALREADY when running.
  [[nodiscard]] int forward_system_events(Sink sink);
  void stop();
  bool running() const { return ids_[0] > 0; }
  uint64_t forwarded() const;

 private:
  EventBus& bus_;
  int ids_[3] = {0, 0, 0};
  std::shared_ptr<std::atomic<uint64_t>> count_ = std::make_shared<std::atomic<uint64_t>>(0);
};

}  // namespace fwevent
