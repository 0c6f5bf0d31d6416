# Sourced by fuzz/run: csrss's request decoders.
fuzz_target csrss_proto services/csrss/fuzz/proto_fuzz.cc services/csrss/proto.cc
