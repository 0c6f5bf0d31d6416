// csrss: the console and window server. Consoles are programs on real pseudo-terminals
// (openpty), read and written through the daemon by the processes of their uid; windows are
// records (owner, title, geometry, z-order). Written on the service skeleton (fwsvc): one
// thread, an epoll loop over the PTY masters, the pidfds of children and clients, and the
// service channel `csrss`. The daemon never blocks on a client or a program: output goes
// into a bounded scroll-back per console and from there into each reader's own channel
// with non-blocking sends.
#include <fcntl.h>
#include <grp.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fwsvc.h"
#include "services/csrss/events_sink.h"
#include "services/csrss/proto.h"
#include "services/csrss/scrollback.h"

extern char** environ;

namespace csrss {
namespace {

struct Options {
  size_t scrollback_bytes = 8u << 20;
  size_t max_consoles_per_uid = 32;
  size_t max_consoles = 1024;
  size_t max_windows_per_process = 64;
  size_t max_windows = 4096;
  size_t max_readers_per_console = 16;
  size_t max_finished = 256;  // ended consoles kept for wait/capture
  size_t input_buffer_bytes = 65536;
  size_t max_events = 1024;
};

struct Creds {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// The caller's effective ids, from the kernel's view of the PID the runtime reported (the
// caller is inside its call, so the PID cannot have been reused yet).
int read_creds(pid_t pid, Creds* c) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", int(pid));
  FILE* f = std::fopen(path, "re");
  if (!f) return -ESRCH;
  char line[4096];
  int have = 0;
  while (std::fgets(line, sizeof line, f)) {
    unsigned r, e;
    if (std::sscanf(line, "Uid: %u %u", &r, &e) == 2) c->uid = e, have |= 1;
    if (std::sscanf(line, "Gid: %u %u", &r, &e) == 2) c->gid = e, have |= 2;
    if (std::strncmp(line, "Groups:", 7) == 0) {
      char* p = line + 7;
      for (;;) {
        char* end;
        const unsigned long g = std::strtoul(p, &end, 10);
        if (end == p) break;
        c->groups.push_back(gid_t(g));
        p = end;
      }
    }
  }
  std::fclose(f);
  return have == 3 ? 0 : -ESRCH;
}

int pidfd_open(pid_t pid) { return int(::syscall(SYS_pidfd_open, pid, 0)); }

struct Reader {
  pid_t pid = 0;
  uint32_t ch = 0;
  uint64_t cursor = 0;
  bool ended = false;    // kOutEnd delivered
  bool blocked = false;  // its channel was full at the last push
};

class Server;

struct Console {
  Server* srv = nullptr;
  uint32_t id = 0;
  uid_t uid = 0;
  pid_t pid = 0;
  int master = -1;
  int pidfd = -1;
  std::vector<std::string> argv;
  uint16_t rows = 0, cols = 0;
  Scrollback sb;
  std::string input;  // bytes accepted but not yet taken by the PTY
  bool watching_out = false;
  bool output_ended = false;
  bool exited = false;
  bool closed = false;
  int status = 0;
  int kill_timer = 0;
  std::vector<Reader> readers;
  explicit Console(size_t sb_bytes) : sb(sb_bytes) {}
  bool finished() const { return exited && output_ended; }
};

struct Window {
  uint32_t id;
  pid_t pid;
  uid_t uid;
  std::string title;
  WinGeom g;
};

class Server {
 public:
  Server(fwsvc_loop* loop, const Options& o) : loop_(loop), opt_(o) {
    // Console ids start from the clock, so that an id kept from an earlier csrss is
    // unknown (-ENOENT) to this one rather than naming a different console.
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    next_con_ = 1 + uint32_t((uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000) % 1000000000);
  }
  int start();
  void stop_all();

 private:
  using Handler = void (Server::*)(const fwsvc_request*);
  template <Handler H>
  static void thunk(void* ctx, const fwsvc_request* req) {
    (static_cast<Server*>(ctx)->*H)(req);
  }

  void con_create(const fwsvc_request* req);
  void con_write(const fwsvc_request* req);
  void con_resize(const fwsvc_request* req);
  void con_wait(const fwsvc_request* req);
  void con_close(const fwsvc_request* req);
  void con_attach(const fwsvc_request* req);
  void con_detach(const fwsvc_request* req);
  void con_list(const fwsvc_request* req);
  void con_capture(const fwsvc_request* req);
  void win_create(const fwsvc_request* req);
  void win_move(const fwsvc_request* req);
  void win_title(const fwsvc_request* req);
  void win_raise(const fwsvc_request* req);
  void win_destroy(const fwsvc_request* req);
  void win_list(const fwsvc_request* req);
  void events(const fwsvc_request* req);

  // The console `con` if the caller may use it (-ENOENT, -EPERM otherwise).
  int lookup(const fwsvc_request* req, uint32_t con, Console** out, Creds* creds = nullptr);
  int open_reader(const std::string& name, pid_t pid, uid_t uid, uint32_t* ch);
  int spawn(Console* c, const CreateReq& r, const Creds& cr, pid_t caller);
  int watch_client(pid_t pid);
  void client_gone(pid_t pid);
  void push(Console* c);
  void arm_retry();
  void end_output(Console* c);
  void reaped(Console* c, int wstatus);
  void flush_input(Console* c);
  void set_out_watch(Console* c, bool on);
  void hang_up(Console* c);
  void gc_finished();
  void emit(const std::string& topic, const std::string& fields, const std::string& brief);
  std::string console_brief(const Console& c) const;
  std::string window_brief(const Window& w) const;
  std::string console_json(const Console& c) const;
  std::string window_json(const Window& w) const;
  std::string z_json() const;
  Window* find_window(const fwsvc_request* req, uint32_t id, int* rc);
  template <typename Req, typename Change>
  void change_window(const fwsvc_request* req, uint32_t Req::*id, const char* what, Change change);

  static void on_master(void* ctx, int fd, uint32_t ev);
  static void on_child(void* ctx, int fd, uint32_t ev);
  static void on_client(void* ctx, int fd, uint32_t ev);
  static void on_retry(void* ctx);
  static void on_kill(void* ctx);

  fwsvc_loop* loop_;
  Options opt_;
  fwsvc_service* svc_ = nullptr;
  std::map<uint32_t, std::unique_ptr<Console>> consoles_;
  uint32_t next_con_ = 1;
  std::vector<Window> z_;  // bottom first
  uint32_t next_win_ = 1;
  std::map<int, pid_t> client_fds_;  // pidfd -> client PID
  std::map<pid_t, int> clients_;     // client PID -> pidfd
  std::deque<std::string> events_;
  uint64_t seq_ = 0;
  int retry_timer_ = 0;

 public:
  int service_new();
};

// ---- Helpers ----------------------------------------------------------------------------

bool may_use(const Creds& cr, uid_t owner) { return cr.uid == 0 || cr.uid == owner; }

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t at = 0;
  while (at <= p.size()) {
    size_t colon = p.find(':', at);
    if (colon == std::string::npos) colon = p.size();
    std::string dir = p.substr(at, colon - at);
    if (dir.empty()) dir = ".";
    const std::string full = dir + "/" + name;
    struct stat st;
    if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return full;
    at = colon + 1;
  }
  return {};
}

// ---- Service ----------------------------------------------------------------------------

int Server::service_new() {
  fwsvc_options o;
  fwsvc_options_init(&o);
  o.type = IPC_TYPE_SOCKET;  // $FWIPC_RUNTIME_DIR/csrss.sock
  o.perm_mode = 0666;        // every uid may call; each method checks the caller's uid
  o.max_transfers = 64;
  return fwsvc_service_new(loop_, "csrss", &o, &svc_);
}

int Server::start() {
  int rc = service_new();
  if (rc < 0) return rc;
  struct M {
    uint32_t m;
    fwsvc_method_fn fn;
  } const methods[] = {
      {kConCreate, thunk<&Server::con_create>},   {kConWrite, thunk<&Server::con_write>},
      {kConResize, thunk<&Server::con_resize>},   {kConWait, thunk<&Server::con_wait>},
      {kConClose, thunk<&Server::con_close>},     {kConAttach, thunk<&Server::con_attach>},
      {kConDetach, thunk<&Server::con_detach>},   {kConList, thunk<&Server::con_list>},
      {kConCapture, thunk<&Server::con_capture>}, {kWinCreate, thunk<&Server::win_create>},
      {kWinMove, thunk<&Server::win_move>},       {kWinTitle, thunk<&Server::win_title>},
      {kWinRaise, thunk<&Server::win_raise>},     {kWinDestroy, thunk<&Server::win_destroy>},
      {kWinList, thunk<&Server::win_list>},       {kEvents, thunk<&Server::events>},
  };
  for (const M& m : methods)
    if ((rc = fwsvc_service_add_method(svc_, m.m, m.fn, this)) < 0) return rc;
  return 0;
}

void Server::stop_all() {
  for (auto& [id, c] : consoles_)
    if (!c->exited) {
      ::kill(-c->pid, SIGHUP);
      ::kill(-c->pid, SIGCONT);
    }
  for (auto& [id, c] : consoles_) {
    for (auto& r : c->readers) ipc_close_channel(r.ch);
    if (c->master >= 0) ::close(c->master);
    if (c->pidfd >= 0) ::close(c->pidfd);
  }
  for (auto& [fd, pid] : client_fds_) ::close(fd);
  fwsvc_service_free(svc_);
  svc_ = nullptr;
}

int Server::lookup(const fwsvc_request* req, uint32_t con, Console** out, Creds* creds) {
  Creds cr;
  if (read_creds(pid_t(req->sender_pid), &cr) < 0) return -ESRCH;
  auto it = consoles_.find(con);
  if (it == consoles_.end()) return -ENOENT;
  if (!may_use(cr, it->second->uid)) return -EPERM;
  *out = it->second.get();
  if (creds) *creds = cr;
  return 0;
}

// Opens the reader's channel for writing, refusing one that the caller did not create
// (else a client could have output written into another process's channel).
int Server::open_reader(const std::string& name, pid_t pid, uid_t uid, uint32_t* ch) {
  const int id = ipc_open_channel(name.c_str(), IPC_MODE_WRITE | IPC_MODE_NONBLOCK);
  if (id < 0) return id == -ENOENT ? -ENOENT : id;
  IPC_CHANNEL_INFO info;
  const int rc = ipc_channel_info(uint32_t(id), &info);
  if (rc < 0 || info.owner_uid != uid || info.creator_pid != uint32_t(pid) || info.type != IPC_TYPE_QUEUE) {
    ipc_close_channel(uint32_t(id));
    return rc < 0 ? rc : -EPERM;
  }
  *ch = uint32_t(id);
  return 0;
}

int Server::watch_client(pid_t pid) {
  if (clients_.count(pid)) return 0;
  const int fd = pidfd_open(pid);
  if (fd < 0) return -errno;
  const int rc = fwsvc_loop_add_fd(loop_, fd, FWSVC_EVENT_IN, on_client, this);
  if (rc < 0) {
    ::close(fd);
    return rc;
  }
  clients_[pid] = fd;
  client_fds_[fd] = pid;
  return 0;
}

void Server::on_client(void* ctx, int fd, uint32_t) {
  auto* s = static_cast<Server*>(ctx);
  auto it = s->client_fds_.find(fd);
  if (it == s->client_fds_.end()) return;
  s->client_gone(it->second);
}

// A reader or window owner exited: its reader channels are closed and its windows go.
void Server::client_gone(pid_t pid) {
  const int fd = clients_[pid];
  fwsvc_loop_remove_fd(loop_, fd);
  ::close(fd);
  clients_.erase(pid);
  client_fds_.erase(fd);
  for (auto& [id, c] : consoles_) {
    for (auto it = c->readers.begin(); it != c->readers.end();) {
      if (it->pid == pid) {
        ipc_close_channel(it->ch);
        it = c->readers.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (size_t i = 0; i < z_.size();) {
    if (z_[i].pid == pid) {
      const Window w = z_[i];
      z_.erase(z_.begin() + long(i));
      emit("system.csrss.window.destroyed",
           "\"reason\":\"owner exited\",\"window\":" + window_json(w) + ",\"z_order\":" + z_json(),
           "\"reason\":\"owner exited\"," + window_brief(w));
    } else {
      i++;
    }
  }
  gc_finished();
}

// ---- Consoles ---------------------------------------------------------------------------

int Server::spawn(Console* c, const CreateReq& r, const Creds& cr, pid_t caller) {
  const std::string path = find_program(r.argv[0]);
  if (path.empty()) return -ENOENT;
  if (::access(path.c_str(), X_OK) != 0) return -errno;
  const bool switch_ids = ::geteuid() == 0 && cr.uid != 0;
  if (::geteuid() != 0 && cr.uid != ::geteuid()) return -EPERM;

  // Everything the child needs is prepared here: between fork and exec it makes only
  // async-signal-safe calls (the daemon has threads: the runtime's progress thread).
  std::vector<std::string> env;
  for (char** e = environ; *e; e++) {
    const std::string v = *e;
    if (v.rfind("NOTIFY_SOCKET=", 0) == 0 || v.rfind("LISTEN_", 0) == 0 || v.rfind("TERM=", 0) == 0) continue;
    if (switch_ids && (v.rfind("HOME=", 0) == 0 || v.rfind("USER=", 0) == 0 || v.rfind("LOGNAME=", 0) == 0 ||
                       v.rfind("SHELL=", 0) == 0))
      continue;
    env.push_back(v);
  }
  const char* term = std::getenv("TERM");
  env.push_back(std::string("TERM=") + (term && *term && std::strcmp(term, "dumb") ? term : "xterm-256color"));
  if (switch_ids) {
    struct passwd pw, *res = nullptr;
    char buf[4096];
    if (::getpwuid_r(cr.uid, &pw, buf, sizeof buf, &res) == 0 && res) {
      env.push_back(std::string("HOME=") + pw.pw_dir);
      env.push_back(std::string("USER=") + pw.pw_name);
      env.push_back(std::string("LOGNAME=") + pw.pw_name);
      env.push_back(std::string("SHELL=") + pw.pw_shell);
    }
  }
  std::vector<char*> envp, argv;
  for (auto& v : env) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = r.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char cwd[4096];
  char link[64];
  std::snprintf(link, sizeof link, "/proc/%d/cwd", int(caller));
  const ssize_t cl = ::readlink(link, cwd, sizeof cwd - 1);
  cwd[cl > 0 ? cl : 0] = 0;
  if (cl <= 0) std::strcpy(cwd, "/");

  int master = -1, slave = -1;
  struct winsize ws {};
  ws.ws_row = r.rows, ws.ws_col = r.cols;
  if (::openpty(&master, &slave, nullptr, nullptr, &ws) != 0) return -errno;
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  ::fcntl(master, F_SETFL, ::fcntl(master, F_GETFL) | O_NONBLOCK);
  if (switch_ids) {
    (void)!::fchown(slave, cr.uid, gid_t(-1));
    ::fchmod(slave, 0620);
  }
  int errp[2];
  if (::pipe2(errp, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(master), ::close(slave);
    return -e;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(master), ::close(slave), ::close(errp[0]), ::close(errp[1]);
    return -e;
  }
  if (pid == 0) {
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) ::sigaction(s, &dfl, nullptr);
    int err = 0;
    if (::setsid() < 0 || ::ioctl(slave, TIOCSCTTY, 0) < 0) err = errno;
    if (!err && (::dup2(slave, 0) < 0 || ::dup2(slave, 1) < 0 || ::dup2(slave, 2) < 0)) err = errno;
    if (!err && switch_ids) {
      if (::setgroups(cr.groups.size(), cr.groups.data()) < 0 || ::setgid(cr.gid) < 0 || ::setuid(cr.uid) < 0)
        err = errno;
    }
    if (!err) {
      if (::chdir(cwd) != 0 && ::chdir("/") != 0) {
      }
      ::syscall(SYS_close_range, 3, ~0u, 4 /* CLOSE_RANGE_CLOEXEC */);
      ::execve(path.c_str(), argv.data(), envp.data());
      err = errno;
    }
    (void)!::write(errp[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(slave);
  ::close(errp[1]);
  int child_err = 0;
  ssize_t n;
  do n = ::read(errp[0], &child_err, sizeof child_err);
  while (n < 0 && errno == EINTR);
  ::close(errp[0]);
  if (n == sizeof child_err) {
    ::waitpid(pid, nullptr, 0);  // it _exit()s right after writing
    ::close(master);
    return -child_err;
  }
  // The pidfd is how the child is reaped: without one (out of descriptors) it is not started.
  const int pidfd = pidfd_open(pid);
  int rc = pidfd < 0 ? -errno : fwsvc_loop_add_fd(loop_, pidfd, FWSVC_EVENT_IN, on_child, c);
  if (rc == 0) rc = fwsvc_loop_add_fd(loop_, master, FWSVC_EVENT_IN, on_master, c);
  if (rc < 0) {
    if (pidfd >= 0) fwsvc_loop_remove_fd(loop_, pidfd), ::close(pidfd);
    ::kill(-pid, SIGKILL), ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    ::close(master);
    return rc;
  }
  c->pid = pid;
  c->master = master;
  c->pidfd = pidfd;
  return 0;
}

void Server::con_create(const fwsvc_request* req) {
  CreateReq r;
  int rc = decode(req->body, req->body_len, &r);
  Creds cr;
  if (rc == 0) rc = read_creds(pid_t(req->sender_pid), &cr);
  if (rc == 0) {
    size_t mine = 0, running = 0;
    for (auto& [id, c] : consoles_)
      if (!c->exited) running++, mine += c->uid == cr.uid;
    if (running >= opt_.max_consoles || (cr.uid != 0 && mine >= opt_.max_consoles_per_uid)) rc = -EDQUOT;
  }
  uint32_t ch = 0;
  if (rc == 0) rc = open_reader(r.channel, pid_t(req->sender_pid), cr.uid, &ch);
  if (rc < 0) {
    fwsvc_reply(req, rc, nullptr, 0);
    return;
  }
  auto c = std::make_unique<Console>(opt_.scrollback_bytes);
  c->srv = this;
  c->uid = cr.uid;
  c->argv = r.argv;
  c->rows = r.rows, c->cols = r.cols;
  rc = spawn(c.get(), r, cr, pid_t(req->sender_pid));
  if (rc == 0) rc = watch_client(pid_t(req->sender_pid));
  if (rc < 0) {
    if (c->pid > 0) {  // started, but its creator is already gone: hang it up
      c->id = next_con_++;
      c->readers.clear();
      Console* p = c.get();
      consoles_[p->id] = std::move(c);
      hang_up(p);
    }
    ipc_close_channel(ch);
    fwsvc_reply(req, rc, nullptr, 0);
    return;
  }
  c->id = next_con_++;
  c->readers.push_back(Reader{pid_t(req->sender_pid), ch, 0, false, false});
  Console* p = c.get();
  consoles_[p->id] = std::move(c);
  emit("system.csrss.console.created", "\"console\":" + console_json(*p), console_brief(*p));
  fwsvc_reply(req, int32_t(p->id), nullptr, 0);
}

void Server::on_master(void* ctx, int fd, uint32_t ev) {
  auto* c = static_cast<Console*>(ctx);
  Server* s = c->srv;
  if (ev & FWSVC_EVENT_OUT) s->flush_input(c);
  if (ev & (FWSVC_EVENT_IN | FWSVC_EVENT_HUP | FWSVC_EVENT_ERR)) {
    static char buf[65536];
    // A bounded number of reads per turn, so that calls are served during a flood.
    for (int i = 0; i < 16; i++) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        c->sb.append(buf, size_t(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      s->end_output(c);  // EIO: every descriptor of the terminal's other side is closed
      break;
    }
  }
  s->push(c);
}

void Server::end_output(Console* c) {
  if (c->master < 0) return;
  fwsvc_loop_remove_fd(loop_, c->master);
  ::close(c->master);
  c->master = -1;
  c->output_ended = true;
  c->input.clear();
}

void Server::on_child(void* ctx, int, uint32_t) {
  auto* c = static_cast<Console*>(ctx);
  int st = 0;
  const pid_t r = ::waitpid(c->pid, &st, WNOHANG);
  if (r == c->pid) c->srv->reaped(c, st);
}

void Server::reaped(Console* c, int st) {
  fwsvc_loop_remove_fd(loop_, c->pidfd);
  ::close(c->pidfd);
  c->pidfd = -1;
  c->exited = true;
  c->status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
  if (c->kill_timer) fwsvc_loop_remove_timer(loop_, c->kill_timer), c->kill_timer = 0;
  emit("system.csrss.console.exited", "\"console\":" + console_json(*c), console_brief(*c));
  push(c);
  gc_finished();
}

void Server::push(Console* c) {
  static IPC_HEADER hdrs[64];
  static char chunks[64][IPC_MAX_PAYLOAD];
  static const void* payloads[64];
  for (auto it = c->readers.begin(); it != c->readers.end();) {
    Reader& r = *it;
    r.blocked = false;
    bool drop = false;
    if (!r.ended && r.cursor < c->sb.begin()) {
      const uint64_t lost = c->sb.begin() - r.cursor;
      IPC_HEADER h{kOutGap, 8, 0, 0, 0};
      const int rc = ipc_send_header(r.ch, &h, &lost);
      if (rc == -EAGAIN)
        r.blocked = true;
      else if (rc < 0)
        drop = true;
      else
        r.cursor = c->sb.begin();
    }
    while (!r.blocked && !drop && r.cursor < c->sb.end()) {
      uint32_t k = 0;
      uint64_t at = r.cursor;
      while (k < 64 && at < c->sb.end()) {
        const size_t n = c->sb.copy(at, chunks[k], IPC_MAX_PAYLOAD);
        hdrs[k] = IPC_HEADER{kOutData, uint32_t(n), 0, 0, 0};
        payloads[k] = chunks[k];
        at += n, k++;
      }
      const int sent = ipc_send_batch(r.ch, hdrs, payloads, k);
      if (sent == -EAGAIN) {
        r.blocked = true;
      } else if (sent < 0) {
        drop = true;
      } else {
        for (int i = 0; i < sent; i++) r.cursor += hdrs[i].size;
        if (uint32_t(sent) < k) r.blocked = true;
      }
    }
    if (!r.blocked && !drop && !r.ended && c->finished() && r.cursor == c->sb.end()) {
      const int32_t st = c->status;
      IPC_HEADER h{kOutEnd, 4, 0, 0, 0};
      const int rc = ipc_send_header(r.ch, &h, &st);
      if (rc == -EAGAIN)
        r.blocked = true;
      else if (rc < 0)
        drop = true;
      else
        r.ended = true;
    }
    if (drop) {  // its channel is gone (the reader closed it or died)
      ipc_close_channel(r.ch);
      it = c->readers.erase(it);
    } else {
      ++it;
    }
  }
  arm_retry();
}

// Readers whose channel was full are retried every 2 ms while there are any: the runtime
// has no "room again" notification for a writer, and the daemon must not block in a send.
void Server::arm_retry() {
  bool any = false;
  for (auto& [id, c] : consoles_)
    for (auto& r : c->readers) any |= r.blocked;
  if (any && !retry_timer_) retry_timer_ = fwsvc_loop_add_timer(loop_, 2, 1, on_retry, this);
  if (!any && retry_timer_) fwsvc_loop_remove_timer(loop_, retry_timer_), retry_timer_ = 0;
}

void Server::on_retry(void* ctx) {
  auto* s = static_cast<Server*>(ctx);
  std::vector<Console*> todo;
  for (auto& [id, c] : s->consoles_)
    for (auto& r : c->readers)
      if (r.blocked) {
        todo.push_back(c.get());
        break;
      }
  for (Console* c : todo) s->push(c);
  s->arm_retry();
  s->gc_finished();
}

void Server::set_out_watch(Console* c, bool on) {
  if (c->master < 0 || c->watching_out == on) return;
  fwsvc_loop_remove_fd(loop_, c->master);
  fwsvc_loop_add_fd(loop_, c->master, FWSVC_EVENT_IN | (on ? FWSVC_EVENT_OUT : 0), on_master, c);
  c->watching_out = on;
}

void Server::flush_input(Console* c) {
  while (!c->input.empty() && c->master >= 0) {
    const ssize_t n = ::write(c->master, c->input.data(), c->input.size());
    if (n > 0) {
      c->input.erase(0, size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EAGAIN: the terminal's input queue is full; EIO: handled by the read side
  }
  set_out_watch(c, !c->input.empty());
}

void Server::con_write(const fwsvc_request* req) {
  WriteReq r;
  int rc = decode(req->body, req->body_len, &r);
  Console* c = nullptr;
  if (rc == 0) rc = lookup(req, r.con, &c);
  if (rc == 0 && (c->master < 0 || c->closed)) rc = -EPIPE;
  if (rc < 0) {
    fwsvc_reply(req, rc, nullptr, 0);
    return;
  }
  // Accept what fits in the bounded input buffer; the caller retries the rest.
  const size_t room = opt_.input_buffer_bytes > c->input.size() ? opt_.input_buffer_bytes - c->input.size() : 0;
  const size_t n = std::min(room, r.len);
  c->input.append(r.data, n);
  flush_input(c);
  fwsvc_reply(req, int32_t(n), nullptr, 0);
}

void Server::con_resize(const fwsvc_request* req) {
  ResizeReq r;
  int rc = decode(req->body, req->body_len, &r);
  Console* c = nullptr;
  if (rc == 0) rc = lookup(req, r.con, &c);
  if (rc == 0 && c->master < 0) rc = -EPIPE;
  if (rc == 0 && (c->rows != r.rows || c->cols != r.cols)) {
    // Applied at once: the kernel signals SIGWINCH to the foreground process group, and
    // signals still pending coalesce, so a storm ends with the program seeing the last
    // size. There is no history to reflow here (raw bytes), so a storm costs an ioctl each.
    struct winsize ws {};
    ws.ws_row = r.rows, ws.ws_col = r.cols;
    if (::ioctl(c->master, TIOCSWINSZ, &ws) != 0)
      rc = -errno;
    else
      c->rows = r.rows, c->cols = r.cols;
  }
  fwsvc_reply(req, rc, nullptr, 0);
}

void Server::con_wait(const fwsvc_request* req) {
  ConReq r;
  int rc = decode(req->body, req->body_len, &r);
  Console* c = nullptr;
  if (rc == 0) rc = lookup(req, r.con, &c);
  if (rc == 0) rc = c->exited ? c->status : -EAGAIN;
  fwsvc_reply(req, rc, nullptr, 0);
}

void Server::hang_up(Console* c) {
  c->closed = true;
  if (!c->exited) {
    ::kill(-c->pid, SIGHUP);
    ::kill(c->pid, SIGHUP);
    ::kill(-c->pid, SIGCONT);
    if (!c->kill_timer) c->kill_timer = fwsvc_loop_add_timer(loop_, 3000, 0, on_kill, c);
  }
  end_output(c);  // closing the master discards unread PTY buffers: nothing waits on them
  push(c);
}

void Server::on_kill(void* ctx) {
  auto* c = static_cast<Console*>(ctx);
  c->kill_timer = 0;
  if (!c->exited) ::kill(-c->pid, SIGKILL), ::kill(c->pid, SIGKILL);
}

void Server::con_close(const fwsvc_request* req) {
  ConReq r;
  int rc = decode(req->body, req->body_len, &r);
  Console* c = nullptr;
  if (rc == 0) rc = lookup(req, r.con, &c);
  if (rc == 0 && c->closed) rc = -EALREADY;
  if (rc == 0) {
    hang_up(c);
    emit("system.csrss.console.closed", "\"console\":" + console_json(*c), console_brief(*c));
  }
  fwsvc_reply(req, rc, nullptr, 0);
}

void Server::con_attach(const fwsvc_request* req) {
  AttachReq r;
  int rc = decode(req->body, req->body_len, &r);
  Console* c = nullptr;
  Creds cr;
  if (rc == 0) rc = lookup(req, r.con, &c, &cr);
  const pid_t pid = pid_t(req->sender_pid);
  if (rc == 0)
    for (auto& rd : c->readers)
      if (rd.pid == pid) rc = -EALREADY;
  if (rc == 0 && c->readers.size() >= opt_.max_readers_per_console) rc = -EDQUOT;
  uint32_t ch = 0;
  if (rc == 0) rc = open_reader(r.channel, pid, cr.uid, &ch);
  if (rc == 0 && (rc = watch_client(pid)) < 0) ipc_close_channel(ch);
  if (rc == 0) {
    c->readers.push_back(Reader{pid, ch, c->sb.end(), false, false});
    emit("system.csrss.console.attached", "\"console\":" + console_json(*c) + ",\"reader_pid\":" + std::to_string(pid),
         console_brief(*c) + ",\"reader_pid\":" + std::to_string(pid));
    push(c);
  }
  fwsvc_reply(req, rc, nullptr, 0);
}

void Server::con_detach(const fwsvc_request* req) {
  ConReq r;
  int rc = decode(req->body, req->body_len, &r);
  Console* c = nullptr;
  if (rc == 0) rc = lookup(req, r.con, &c);
  if (rc == 0) {
    rc = -ENOTCONN;
    for (auto it = c->readers.begin(); it != c->readers.end(); ++it)
      if (it->pid == pid_t(req->sender_pid)) {
        ipc_close_channel(it->ch);
        c->readers.erase(it);
        rc = 0;
        break;
      }
  }
  fwsvc_reply(req, rc, nullptr, 0);
  gc_finished();
}

std::string Server::console_json(const Console& c) const {
  std::string j = "{\"id\":" + std::to_string(c.id) + ",\"pid\":" + std::to_string(c.pid) +
                  ",\"uid\":" + std::to_string(c.uid) + ",\"rows\":" + std::to_string(c.rows) +
                  ",\"cols\":" + std::to_string(c.cols) + ",\"running\":" + (c.exited ? "false" : "true") +
                  ",\"closed\":" + (c.closed ? "true" : "false") +
                  ",\"exit_status\":" + (c.exited ? std::to_string(c.status) : "null") +
                  ",\"readers\":" + std::to_string(c.readers.size()) +
                  ",\"output_bytes\":" + std::to_string(c.sb.end()) + ",\"argv\":[";
  for (size_t i = 0; i < c.argv.size(); i++) j += (i ? "," : "") + json_str(c.argv[i]);
  return j + "]}";
}

void Server::con_list(const fwsvc_request* req) {
  Creds cr;
  int rc = read_creds(pid_t(req->sender_pid), &cr);
  if (rc == 0 && req->body_len != 0) rc = -EBADMSG;
  if (rc < 0) {
    fwsvc_reply(req, rc, nullptr, 0);
    return;
  }
  std::string j = "[";
  for (auto& [id, c] : consoles_)
    if (may_use(cr, c->uid)) j += (j.size() > 1 ? "," : "") + console_json(*c);
  j += "]";
  fwsvc_reply(req, 0, j.data(), j.size());
}

void Server::con_capture(const fwsvc_request* req) {
  ConReq r;
  int rc = decode(req->body, req->body_len, &r);
  Console* c = nullptr;
  if (rc == 0) rc = lookup(req, r.con, &c);
  if (rc < 0) {
    fwsvc_reply(req, rc, nullptr, 0);
    return;
  }
  const size_t max = (1u << 20) - 64;  // the service's reply bound
  const uint64_t from = std::max<uint64_t>(c->sb.begin(), c->sb.end() > max ? c->sb.end() - max : 0);
  std::string out(size_t(c->sb.end() - from), '\0');
  out.resize(c->sb.copy(from, out.data(), out.size()));
  fwsvc_reply(req, int32_t(out.size()), out.data(), out.size());
}

// Ended consoles stay for wait() and capture; the oldest go past max_finished.
void Server::gc_finished() {
  size_t finished = 0;
  for (auto& [id, c] : consoles_) finished += c->finished();
  for (auto it = consoles_.begin(); it != consoles_.end() && finished > opt_.max_finished;) {
    bool delivered = true;
    for (auto& r : it->second->readers) delivered &= r.ended;
    if (it->second->finished() && delivered) {
      for (auto& r : it->second->readers) ipc_close_channel(r.ch);
      it = consoles_.erase(it);
      finished--;
    } else {
      ++it;
    }
  }
}

// ---- Windows ----------------------------------------------------------------------------

std::string Server::window_json(const Window& w) const {
  return "{\"id\":" + std::to_string(w.id) + ",\"pid\":" + std::to_string(w.pid) + ",\"title\":" + json_str(w.title) +
         ",\"x\":" + std::to_string(w.g.x) + ",\"y\":" + std::to_string(w.g.y) + ",\"w\":" + std::to_string(w.g.w) +
         ",\"h\":" + std::to_string(w.g.h) + "}";
}

std::string Server::console_brief(const Console& c) const {
  return "\"console_id\":" + std::to_string(c.id) + ",\"pid\":" + std::to_string(c.pid) +
         ",\"uid\":" + std::to_string(c.uid) + ",\"exit_status\":" + (c.exited ? std::to_string(c.status) : "null");
}

std::string Server::window_brief(const Window& w) const {
  return "\"window_id\":" + std::to_string(w.id) + ",\"pid\":" + std::to_string(w.pid) +
         ",\"z_count\":" + std::to_string(z_.size());
}

std::string Server::z_json() const {
  std::string j = "[";
  for (size_t i = 0; i < z_.size(); i++) j += (i ? "," : "") + std::to_string(z_[i].id);
  return j + "]";
}

Window* Server::find_window(const fwsvc_request* req, uint32_t id, int* rc) {
  Creds cr;
  if ((*rc = read_creds(pid_t(req->sender_pid), &cr)) < 0) return nullptr;
  for (auto& w : z_)
    if (w.id == id) {
      // The owning process, or root, may change it.
      if (w.pid != pid_t(req->sender_pid) && cr.uid != 0) {
        *rc = -EPERM;
        return nullptr;
      }
      return &w;
    }
  *rc = -ENOENT;
  return nullptr;
}

void Server::win_create(const fwsvc_request* req) {
  WinCreateReq r;
  int rc = decode(req->body, req->body_len, &r);
  Creds cr;
  const pid_t pid = pid_t(req->sender_pid);
  if (rc == 0) rc = read_creds(pid, &cr);
  if (rc == 0) {
    size_t mine = 0;
    for (auto& w : z_) mine += w.pid == pid;
    if (z_.size() >= opt_.max_windows || mine >= opt_.max_windows_per_process) rc = -EDQUOT;
  }
  if (rc == 0) rc = watch_client(pid);
  if (rc < 0) {
    fwsvc_reply(req, rc, nullptr, 0);
    return;
  }
  z_.push_back(Window{next_win_++, pid, cr.uid, r.title, r.g});
  const Window& w = z_.back();
  const uint32_t id = w.id;
  emit("system.csrss.window.created", "\"window\":" + window_json(w) + ",\"z_order\":" + z_json(), window_brief(w));
  fwsvc_reply(req, int32_t(id), nullptr, 0);
}

// Every request that changes one window has this shape: decode, find the window (the
// caller's own, or any for root), change it, announce what changed, answer. `change`
// returns the window as it is afterwards (raise moves it in z_).
template <typename Req, typename Change>
void Server::change_window(const fwsvc_request* req, uint32_t Req::*id, const char* what, Change change) {
  Req r;
  int rc = decode(req->body, req->body_len, &r);
  Window* w = rc == 0 ? find_window(req, r.*id, &rc) : nullptr;
  if (w) {
    const Window& after = change(*w, r);
    const std::string c = std::string("\"change\":\"") + what + "\",";
    emit("system.csrss.window.changed", c + "\"window\":" + window_json(after) + ",\"z_order\":" + z_json(),
         c + window_brief(after));
  }
  fwsvc_reply(req, rc, nullptr, 0);
}

void Server::win_move(const fwsvc_request* req) {
  change_window(req, &WinMoveReq::id, "geometry", [](Window& w, const WinMoveReq& r) -> const Window& {
    w.g = r.g;
    return w;
  });
}

void Server::win_title(const fwsvc_request* req) {
  change_window(req, &WinTitleReq::id, "title", [](Window& w, const WinTitleReq& r) -> const Window& {
    w.title = r.title;
    return w;
  });
}

void Server::win_raise(const fwsvc_request* req) {
  change_window(req, &ConReq::con, "raise", [this](Window& w, const ConReq&) -> const Window& {
    const Window copy = w;
    z_.erase(z_.begin() + (&w - z_.data()));
    z_.push_back(copy);
    return z_.back();
  });
}

void Server::win_destroy(const fwsvc_request* req) {
  ConReq r;
  int rc = decode(req->body, req->body_len, &r);
  Window* w = rc == 0 ? find_window(req, r.con, &rc) : nullptr;
  if (w) {
    const Window copy = *w;
    z_.erase(z_.begin() + (w - z_.data()));
    emit("system.csrss.window.destroyed",
         "\"reason\":\"destroyed\",\"window\":" + window_json(copy) + ",\"z_order\":" + z_json(),
         "\"reason\":\"destroyed\"," + window_brief(copy));
  }
  fwsvc_reply(req, rc, nullptr, 0);
}

void Server::win_list(const fwsvc_request* req) {
  if (req->body_len != 0) {
    fwsvc_reply(req, -EBADMSG, nullptr, 0);
    return;
  }
  std::string j = "[";
  for (size_t i = 0; i < z_.size(); i++) j += (i ? "," : "") + window_json(z_[i]);
  j += "]";
  fwsvc_reply(req, 0, j.data(), j.size());
}

// ---- Events -----------------------------------------------------------------------------

// fields: the full event; brief: what fits in one event-bus message (512 bytes with the
// topic) when the full one does not: ids and counts, the rest by seq from
// csrss_events_read().
void Server::emit(const std::string& topic, const std::string& fields, const std::string& brief) {
  const uint64_t seq = ++seq_;
  const std::string head = "{\"seq\":" + std::to_string(seq) + ",\"topic\":" + json_str(topic) + ",";
  std::string body = head + fields + "}";
  events_sink_emit(topic, body, head + "\"truncated\":true," + brief + "}");
  events_.push_back(std::move(body));
  if (events_.size() > opt_.max_events) events_.pop_front();
}

void Server::events(const fwsvc_request* req) {
  EventsReq r;
  const int rc = decode(req->body, req->body_len, &r);
  if (rc < 0) {
    fwsvc_reply(req, rc, nullptr, 0);
    return;
  }
  const uint64_t oldest = seq_ - events_.size() + 1;  // seq of events_.front()
  std::string j = "[";
  int count = 0;
  uint64_t from = r.after + 1;
  if (from < oldest && r.after != 0) {
    j += "{\"seq\":" + std::to_string(oldest - 1) +
         ",\"topic\":\"system.csrss.gap\",\"lost\":" + std::to_string(oldest - from) + "}";
    count++;
  }
  if (from < oldest) from = oldest;
  for (uint64_t s = from; s <= seq_; s++) {
    const std::string& e = events_[size_t(s - oldest)];
    if (j.size() + e.size() + 2 > (1u << 20) - 64) break;  // the rest in the next call
    j += (count ? "," : "") + e;
    count++;
  }
  j += "]";
  fwsvc_reply(req, count, j.data(), j.size());
}

// ---- main -------------------------------------------------------------------------------

const char kHelp[] =
    "Usage: csrss [OPTION]...\n"
    "The FreeWorld console and window server.\n"
    "\n"
    "Serves the channel `csrss` ($FWIPC_RUNTIME_DIR/csrss.sock, a SOCKET channel, mode 0666;\n"
    "every request is checked against the caller's uid, which the kernel reports).\n"
    "Consoles are programs on real pseudo-terminals, run as the uid, groups and working\n"
    "directory of the process that created them; processes of that uid (and root) may\n"
    "attach, read, write, resize and close them. Windows are records (owner PID, title,\n"
    "geometry) in one z-order, destroyed when their owner exits. Every change is an event\n"
    "(system.csrss.console.* and system.csrss.window.*), readable through\n"
    "csrss_events_read() and, where the event bus is built in, published on it.\n"
    "\n"
    "Output is never dropped silently and the daemon never blocks on a reader: each\n"
    "console keeps the newest BYTES of its output; a reader that falls further behind\n"
    "gets a gap marker with the number of bytes it lost, then the rest.\n"
    "\n"
    "Options:\n"
    "  --scrollback BYTES     scroll-back per console (K, M, G suffixes; default 8M,\n"
    "                         at least 4K, at most 1G)\n"
    "  --max-consoles N       running consoles per uid other than root (default 32);\n"
    "                         the whole daemon holds at most 1024\n"
    "  --max-windows N        windows per process (default 64); at most 4096 in all\n"
    "  --max-readers N        attached readers per console (default 16)\n"
    "  --help                 this text\n"
    "\n"
    "Signals: SIGTERM and SIGINT stop it (the consoles' programs get SIGHUP); SIGHUP\n"
    "prints the event-bus counters (published, brief, not published) on stderr.\n"
    "Exit status: 0 after SIGTERM/SIGINT, 1 if the channel cannot be served, 2 for bad\n"
    "options. Sends READY=1 to $NOTIFY_SOCKET once it serves.\n";

bool parse_size(const char* s, size_t* out) {
  char* end;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || errno || *s == '-') return false;
  switch (*end) {
    case 'K':
    case 'k': v <<= 10, end++; break;
    case 'M':
    case 'm': v <<= 20, end++; break;
    case 'G':
    case 'g': v <<= 30, end++; break;
    default: break;
  }
  if (*end) return false;
  *out = size_t(v);
  return true;
}

}  // namespace
}  // namespace csrss

int main(int argc, char** argv) {
  using namespace csrss;
  Options o;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    size_t* field = a == "--scrollback"     ? &o.scrollback_bytes
                    : a == "--max-consoles" ? &o.max_consoles_per_uid
                    : a == "--max-windows"  ? &o.max_windows_per_process
                    : a == "--max-readers"  ? &o.max_readers_per_console
                                            : nullptr;
    if (!field) {
      std::fprintf(stderr, "csrss: unknown option '%s' (see --help)\n", argv[i]);
      return 2;
    }
    if (i + 1 >= argc || !parse_size(argv[i + 1], field)) {
      std::fprintf(stderr, "csrss: %s needs a number, got '%s'\n", a.c_str(), i + 1 < argc ? argv[i + 1] : "");
      return 2;
    }
    i++;
    const bool bad = a == "--scrollback"    ? (o.scrollback_bytes < 4096 || o.scrollback_bytes > (1u << 30))
                     : a == "--max-readers" ? (*field < 1 || *field > 1024)
                                            : (*field < 1 || *field > 4096);
    if (bad) {
      std::fprintf(stderr, "csrss: %s %s is out of range (see --help)\n", a.c_str(), argv[i]);
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  // Each console holds a PTY master and a pidfd, each client a pidfd: the soft descriptor
  // limit (often 1024) goes up to the hard one.
  struct rlimit nofile;
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  fwsvc_loop* loop = nullptr;
  int rc = fwsvc_loop_new(&loop);  // before any thread: blocks SIGTERM, SIGINT, SIGHUP
  if (rc < 0) {
    std::fprintf(stderr, "csrss: event loop: %s\n", ipc_strerror(rc));
    return 1;
  }
  Server srv(loop, o);
  rc = srv.start();
  if (rc < 0) {
    std::fprintf(stderr, "csrss: serving channel csrss: %s\n", ipc_strerror(rc));
    if (const char* d = ipc_last_error_detail(); d && *d) std::fprintf(stderr, "csrss: %s\n", d);
    srv.stop_all();
    fwsvc_loop_free(loop);
    return 1;
  }
  fwsvc_loop_on_reload(
      loop,
      [](void*) {
        const SinkStats st = events_sink_stats();
        std::fprintf(stderr, "csrss: events on the bus: %llu published (%llu in brief form), %llu not published\n",
                     (unsigned long long)st.published, (unsigned long long)st.briefed, (unsigned long long)st.failed);
      },
      nullptr);
  fwsvc_notify("READY=1");
  rc = fwsvc_loop_run(loop);
  fwsvc_notify("STOPPING=1");
  srv.stop_all();
  fwsvc_loop_free(loop);
  if (rc < 0) std::fprintf(stderr, "csrss: %s\n", ipc_strerror(rc));
  return rc < 0 ? 1 : 0;
}
