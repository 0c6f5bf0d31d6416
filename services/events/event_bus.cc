#include "services/events/event_bus.hpp"

#include <cerrno>
#include <string>
#include <vector>

#include "services/events/fwevent.h"

namespace fwevent {

// One listener, the context of one fwevent subscription. `self` lets the callback keep it
// alive while a handler runs that removes its own listener.
struct EventBus::Listener {
  EventBus* bus;
  std::string pattern;
  Handler fn;
  bool once;
  std::atomic<int> id{0};
  std::atomic<bool> fired{false};
  std::weak_ptr<Listener> self;
};

EventBus::~EventBus() {
  std::vector<int> ids;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& kv : listeners_) ids.push_back(kv.first);
  }
  for (int id : ids) off(id);
}

int EventBus::emit(std::string_view topic, const nlohmann::json& data) {
  std::string text;
  try {
    text = data.dump();
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (...) {  // a string that is not UTF-8
    return -EINVAL;
  }
  return emit_json(topic, text);
}

int EventBus::emit_json(std::string_view topic, std::string_view json) {
  try {
    return fwevent_emit(std::string(topic).c_str(), std::string(json).c_str());
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
}

void EventBus::trampoline(void* ctx, const void* raw) {
  auto* l = static_cast<Listener*>(ctx);
  const std::shared_ptr<Listener> keep = l->self.lock();  // alive until we return
  if (!keep) return;
  if (l->once) {
    if (l->fired.exchange(true)) return;
    // Before the handler runs, as promised. Inside a callback fwevent_unsubscribe() only
    // marks the subscription; an id not known yet is removed by add() when it returns.
    if (const int id = l->id.load(); id > 0) l->bus->off(id);
  }
  const auto* ev = static_cast<const fwevent_event*>(raw);
  try {
    Event e;
    e.topic = ev->topic;
    e.data = nlohmann::json::parse(ev->json);  // valid: the library checked it
    e.sender = pid_t(ev->sender_pid);
    e.gap = ev->gap;
    l->fn(e);
  } catch (...) {  // a handler's exception must not unwind into the library's thread
  }
}

int EventBus::add(std::string_view pattern, Handler fn, bool once) {
  if (!fn) return -EINVAL;
  std::shared_ptr<Listener> l;
  try {
    l = std::make_shared<Listener>();
    l->bus = this;
    l->pattern = std::string(pattern);
    l->fn = std::move(fn);
    l->once = once;
    l->self = l;
    const int id = fwevent_subscribe(
        std::string(pattern).c_str(), [](void* c, const fwevent_event* e) { trampoline(c, e); }, l.get());
    if (id < 0) return id;
    {
      std::lock_guard<std::mutex> lk(mu_);
      listeners_[id] = l;
    }
    l->id.store(id);
    if (once && l->fired.load()) off(id);  // it fired before it knew its id
    return id;
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
}

int EventBus::on(std::string_view pattern, Handler fn) { return add(pattern, std::move(fn), false); }
int EventBus::once(std::string_view pattern, Handler fn) { return add(pattern, std::move(fn), true); }

int EventBus::off(int listener_id) {
  std::shared_ptr<Listener> l;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = listeners_.find(listener_id);
    if (it == listeners_.end()) return -ENOENT;
    l = std::move(it->second);
    listeners_.erase(it);
  }
  fwevent_unsubscribe(listener_id);  // waits for its callback, unless we are inside one
  return 0;
}

int EventBus::off(std::string_view pattern) {
  std::vector<int> ids;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (const auto& kv : listeners_) {
      if (kv.second->pattern == pattern) ids.push_back(kv.first);
    }
  }
  int n = 0;
  for (int id : ids) n += off(id) == 0;
  return n;
}

size_t EventBus::listener_count() const {
  std::lock_guard<std::mutex> lk(mu_);
  return listeners_.size();
}

bool to_log_record(const Event& ev, LogRecord* out) {
  const std::string first = ev.topic.substr(0, ev.topic.find('.'));
  const char* level = first == "error" ? "err" : first == "security" ? "notice" : first == "system" ? "info" : nullptr;
  if (level == nullptr || first.size() == ev.topic.size()) return false;  // "security" alone is not security.>
  out->level = level;
  out->tag = first;
  out->event = ev.topic;
  out->data = ev.data;
  out->pid = ev.sender;
  return true;
}

int EventManager::forward_system_events(Sink sink) {
  if (running()) return -EALREADY;
  if (!sink) return -EINVAL;
  auto count = count_;
  for (int i = 0; i < 3; ++i) {
    const int id = bus_.on(kForwardedPatterns[i], [sink, count](const Event& e) {
      LogRecord r;
      if (!to_log_record(e, &r)) return;
      sink(r, e);
      count->fetch_add(1, std::memory_order_relaxed);
    });
    if (id < 0) {
      stop();
      return id;
    }
    ids_[i] = id;
  }
  return 0;
}

void EventManager::stop() {
  for (int& id : ids_) {
    if (id > 0) bus_.off(id);
    id = 0;
  }
}

uint64_t EventManager::forwarded() const { return count_->load(std::memory_order_relaxed); }

}  // namespace fwevent
