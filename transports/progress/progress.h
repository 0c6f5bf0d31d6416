// The runtime's progress thread: one per process, started with the first channel that
// needs it and stopped with the last. A SOCKET or PIPE channel's hub, and a QUEUE
// channel's bridge, live in their creator's process; without this thread they would move
// frames only inside the creator's own calls, and a creator busy elsewhere (in waitpid, in
// its own event loop on other work) would leave its readers waiting. Each registers a
// descriptor that polls readable when it has work, and the thread calls its progress().
//
// Locking: the thread holds the registry lock while it calls progress(), so remove()
// returns only once no call is running; progress() takes the work's own lock, which its
// owner never holds while it calls add() or remove(). Lock order: registry, then work.
#pragma once

namespace fwipc::progress {

class Work {
 public:
  // On the progress thread, when the registered descriptor polled readable. Non-blocking.
  virtual void progress() noexcept = 0;

 protected:
  ~Work() = default;
};

// Watches fd (level-triggered) for w. 0, or -errno (the thread or its epoll could not be
// made: the owner then makes progress in its own calls, as before). fd stays open until
// remove() returns.
int add(int fd, Work* w) noexcept;

// After it returns, w's progress() is not running and will not be called again. Stops
// the thread with the last registration.
void remove(Work* w) noexcept;

// Around fork(): before_fork() waits until no progress() call runs and holds them off, so
// the child inherits no hub or bridge in the middle of a change; the parent then calls
// after_fork_parent(), the child after_fork_child(). The runtime's fork handlers call
// them (runtime/handle_table.cc), after taking the runtime's own lock.
void before_fork() noexcept;
void after_fork_parent() noexcept;

// In a forked child, after before_fork() in the parent: the thread is the parent's and does
// not exist here. Forgets every registration and the parent's descriptors without touching
// shared state, and releases the lock before_fork() took; call before the child destroys
// what it inherited.
void after_fork_child() noexcept;

}  // namespace fwipc::progress
