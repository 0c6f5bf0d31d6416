// fwsvc_notify(): the base layer's sd_notify(), which the registry uses too.
#include "base/notify.h"
#include "fwsvc.h"

extern "C" int fwsvc_notify(const char* state) { return fwipc::sd_notify(state); }
