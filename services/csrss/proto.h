// csrss wire format: the request bodies of the csrss service's methods (little-endian,
// fixed-width fields, strings as u32 length + bytes) and the messages on a reader's output
// channel. The decoders take another process's bytes: they check every length and range
// and never read past the body (fuzz/proto_fuzz.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace csrss {

enum Method : uint32_t {
  kConCreate = 1,
  kConWrite = 2,
  kConResize = 3,
  kConWait = 4,
  kConClose = 5,
  kConAttach = 6,
  kConDetach = 7,
  kConList = 8,
  kConCapture = 9,
  kWinCreate = 20,
  kWinMove = 21,
  kWinTitle = 22,
  kWinRaise = 23,
  kWinDestroy = 24,
  kWinList = 25,
  kEvents = 30,
};

// Output channel message types (IPC_MESSAGE.type), daemon to reader.
enum OutType : uint32_t {
  kOutData = 1,  // payload: output bytes
  kOutGap = 2,   // payload: u64 bytes lost (the reader fell behind the scroll-back)
  kOutEnd = 3,   // payload: i32 exit status; nothing follows
};

// Bounds the decoders enforce.
constexpr size_t kMaxArgs = 256;
constexpr size_t kMaxArgBytes = 4096;
constexpr size_t kMaxArgvTotal = 65536;
constexpr size_t kMaxTitleBytes = 255;
constexpr uint16_t kMaxDim = 10000;
constexpr int kMaxCoord = 1000000;
constexpr int kMaxWinDim = 65535;
constexpr const char* kReaderPrefix = "csrssc.";

struct CreateReq {
  uint16_t rows = 0, cols = 0;
  std::string channel;  // the caller's output channel
  std::vector<std::string> argv;
};
struct ConReq {
  uint32_t con = 0;
};
struct WriteReq {
  uint32_t con = 0;
  const char* data = nullptr;
  size_t len = 0;
};
struct ResizeReq {
  uint32_t con = 0;
  uint16_t rows = 0, cols = 0;
};
struct AttachReq {
  uint32_t con = 0;
  std::string channel;
};
struct WinGeom {
  int32_t x = 0, y = 0, w = 0, h = 0;
};
struct WinCreateReq {
  WinGeom g;
  std::string title;
};
struct WinMoveReq {
  uint32_t id = 0;
  WinGeom g;
};
struct WinTitleReq {
  uint32_t id = 0;
  std::string title;
};
struct EventsReq {
  uint64_t after = 0;
};

// Each returns 0, or -EBADMSG (truncated, trailing bytes, bad lengths) or -EINVAL (well
// formed but out of range: sizes, geometry, titles, names).
int decode(const void* body, size_t len, CreateReq* out);
int decode(const void* body, size_t len, ConReq* out);
int decode(const void* body, size_t len, WriteReq* out);
int decode(const void* body, size_t len, ResizeReq* out);
int decode(const void* body, size_t len, AttachReq* out);
int decode(const void* body, size_t len, WinCreateReq* out);
int decode(const void* body, size_t len, WinMoveReq* out);
int decode(const void* body, size_t len, WinTitleReq* out);
int decode(const void* body, size_t len, EventsReq* out);

std::string encode(const CreateReq& r);
std::string encode(const ConReq& r);
std::string encode_write(uint32_t con, const void* data, size_t len);
std::string encode(const ResizeReq& r);
std::string encode(const AttachReq& r);
std::string encode(const WinCreateReq& r);
std::string encode(const WinMoveReq& r);
std::string encode(const WinTitleReq& r);
std::string encode(const EventsReq& r);

bool valid_reader_channel(const std::string& name);
bool valid_title(const std::string& t);
bool valid_geom(const WinGeom& g);
// s as a JSON string literal (quotes included; control characters and non-UTF-8 bytes
// escaped as \u00XX so the result is always valid JSON).
std::string json_str(const std::string& s);

}  // namespace csrss
