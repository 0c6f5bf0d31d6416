#include "services/csrss/proto.h"

#include <cerrno>
#include <cstring>

namespace csrss {
namespace {

class In {
 public:
  In(const void* p, size_t n) : p_(static_cast<const unsigned char*>(p)), n_(p ? n : 0) {}
  bool take(void* out, size_t k) {
    if (!ok_ || n_ - pos_ < k) return ok_ = false;
    if (k) std::memcpy(out, p_ + pos_, k);
    pos_ += k;
    return true;
  }
  uint16_t u16() {
    unsigned char b[2] = {};
    take(b, 2);
    return uint16_t(b[0] | b[1] << 8);
  }
  uint32_t u32() {
    unsigned char b[4] = {};
    take(b, 4);
    return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
  }
  int32_t i32() { return int32_t(u32()); }
  uint64_t u64() {
    const uint64_t lo = u32();
    return lo | uint64_t(u32()) << 32;
  }
  bool str(std::string* s, size_t max) {
    const uint32_t k = u32();
    if (!ok_ || k > max || n_ - pos_ < k) return ok_ = false;
    s->assign(reinterpret_cast<const char*>(p_ + pos_), k);
    pos_ += k;
    return true;
  }
  const char* rest(size_t* k) {
    *k = n_ - pos_;
    const char* r = reinterpret_cast<const char*>(p_ + pos_);
    pos_ = n_;
    return r;
  }
  bool ok() const { return ok_; }
  // 0 when everything was read and nothing is left over.
  int end() const { return ok_ && pos_ == n_ ? 0 : -EBADMSG; }

 private:
  const unsigned char* p_;
  size_t n_, pos_ = 0;
  bool ok_ = true;
};

struct Out {
  std::string s;
  void u16(uint16_t v) { s.push_back(char(v & 0xff)), s.push_back(char(v >> 8)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; i++) s.push_back(char((v >> (8 * i)) & 0xff));
  }
  void i32(int32_t v) { u32(uint32_t(v)); }
  void u64(uint64_t v) { u32(uint32_t(v)), u32(uint32_t(v >> 32)); }
  void str(const std::string& v) { u32(uint32_t(v.size())), s += v; }
};

void geom_in(In& in, WinGeom* g) { g->x = in.i32(), g->y = in.i32(), g->w = in.i32(), g->h = in.i32(); }
void geom_out(Out& o, const WinGeom& g) { o.i32(g.x), o.i32(g.y), o.i32(g.w), o.i32(g.h); }

}  // namespace

bool valid_reader_channel(const std::string& n) {
  const size_t plen = std::strlen(kReaderPrefix);
  if (n.size() <= plen || n.size() > 63 || n.compare(0, plen, kReaderPrefix) != 0) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

bool valid_title(const std::string& t) {
  if (t.size() > kMaxTitleBytes) return false;
  for (unsigned char c : t)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

bool valid_geom(const WinGeom& g) {
  return g.w >= 1 && g.w <= kMaxWinDim && g.h >= 1 && g.h <= kMaxWinDim && g.x >= -kMaxCoord && g.x <= kMaxCoord &&
         g.y >= -kMaxCoord && g.y <= kMaxCoord;
}

int decode(const void* body, size_t len, CreateReq* out) {
  In in(body, len);
  out->rows = in.u16(), out->cols = in.u16();
  const uint32_t argc = in.u32();
  in.str(&out->channel, 63);
  if (!in.ok()) return -EBADMSG;
  if (argc == 0 || argc > kMaxArgs) return -EINVAL;
  out->argv.clear();
  size_t total = 0;
  for (uint32_t i = 0; i < argc; i++) {
    std::string a;
    if (!in.str(&a, kMaxArgBytes)) return -EBADMSG;
    total += a.size() + 1;
    if (total > kMaxArgvTotal) return -EINVAL;
    out->argv.push_back(std::move(a));
  }
  if (int rc = in.end()) return rc;
  if (out->rows < 1 || out->rows > kMaxDim || out->cols < 1 || out->cols > kMaxDim) return -EINVAL;
  if (!valid_reader_channel(out->channel)) return -EINVAL;
  for (auto& a : out->argv)
    if (a.find('\0') != std::string::npos) return -EINVAL;
  if (out->argv[0].empty()) return -EINVAL;
  return 0;
}

int decode(const void* body, size_t len, ConReq* out) {
  In in(body, len);
  out->con = in.u32();
  return in.end();
}

int decode(const void* body, size_t len, WriteReq* out) {
  In in(body, len);
  out->con = in.u32();
  out->data = in.rest(&out->len);
  return in.end();
}

int decode(const void* body, size_t len, ResizeReq* out) {
  In in(body, len);
  out->con = in.u32(), out->rows = in.u16(), out->cols = in.u16();
  if (int rc = in.end()) return rc;
  return out->rows < 1 || out->rows > kMaxDim || out->cols < 1 || out->cols > kMaxDim ? -EINVAL : 0;
}

int decode(const void* body, size_t len, AttachReq* out) {
  In in(body, len);
  out->con = in.u32();
  in.str(&out->channel, 63);
  if (int rc = in.end()) return rc;
  return valid_reader_channel(out->channel) ? 0 : -EINVAL;
}

int decode(const void* body, size_t len, WinCreateReq* out) {
  In in(body, len);
  geom_in(in, &out->g);
  in.str(&out->title, 1 << 20);
  if (int rc = in.end()) return rc;
  return valid_geom(out->g) && valid_title(out->title) ? 0 : -EINVAL;
}

int decode(const void* body, size_t len, WinMoveReq* out) {
  In in(body, len);
  out->id = in.u32();
  geom_in(in, &out->g);
  if (int rc = in.end()) return rc;
  return valid_geom(out->g) ? 0 : -EINVAL;
}

int decode(const void* body, size_t len, WinTitleReq* out) {
  In in(body, len);
  out->id = in.u32();
  in.str(&out->title, 1 << 20);
  if (int rc = in.end()) return rc;
  return valid_title(out->title) ? 0 : -EINVAL;
}

int decode(const void* body, size_t len, EventsReq* out) {
  In in(body, len);
  out->after = in.u64();
  return in.end();
}

std::string encode(const CreateReq& r) {
  Out o;
  o.u16(r.rows), o.u16(r.cols), o.u32(uint32_t(r.argv.size())), o.str(r.channel);
  for (auto& a : r.argv) o.str(a);
  return o.s;
}
std::string encode(const ConReq& r) {
  Out o;
  o.u32(r.con);
  return o.s;
}
std::string encode_write(uint32_t con, const void* data, size_t len) {
  Out o;
  o.u32(con);
  o.s.append(static_cast<const char*>(data), len);
  return o.s;
}
std::string encode(const ResizeReq& r) {
  Out o;
  o.u32(r.con), o.u16(r.rows), o.u16(r.cols);
  return o.s;
}
std::string encode(const AttachReq& r) {
  Out o;
  o.u32(r.con), o.str(r.channel);
  return o.s;
}
std::string encode(const WinCreateReq& r) {
  Out o;
  geom_out(o, r.g), o.str(r.title);
  return o.s;
}
std::string encode(const WinMoveReq& r) {
  Out o;
  o.u32(r.id), geom_out(o, r.g);
  return o.s;
}
std::string encode(const WinTitleReq& r) {
  Out o;
  o.u32(r.id), o.str(r.title);
  return o.s;
}
std::string encode(const EventsReq& r) {
  Out o;
  o.u64(r.after);
  return o.s;
}

std::string json_str(const std::string& s) {
  std::string o = "\"";
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < s.size(); i++) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      o += '\\', o += char(c);
    } else if (c < 0x20 || c == 0x7f) {
      o += "\\u00", o += hex[c >> 4], o += hex[c & 15];
    } else if (c < 0x80) {
      o += char(c);
    } else {
      // Copy a well-formed UTF-8 sequence; escape a stray byte as its code point.
      size_t k = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
      bool ok = k >= 2 && i + k <= s.size() && c >= 0xc2 && c <= 0xf4;
      for (size_t j = 1; ok && j < k; j++) ok = (static_cast<unsigned char>(s[i + j]) & 0xc0) == 0x80;
      if (ok) {
        o.append(s, i, k);
        i += k - 1;
      } else {
        o += "\\u00", o += hex[c >> 4], o += hex[c & 15];
      }
    }
  }
  return o + "\"";
}

}  // namespace csrss
