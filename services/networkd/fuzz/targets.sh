# networkd's decoders (sourced by fuzz/run, which defines fuzz_target).
fuzz_target networkd_request services/networkd/fuzz/request_fuzz.cc services/networkd/protocol.cc \
  services/networkd/ip4.cc services/networkd/config.cc
