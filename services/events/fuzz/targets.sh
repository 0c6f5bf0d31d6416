# The event bus's decoders (sourced by fuzz/run, which defines fuzz_target): the wire
# decoder of received events and the topic/pattern grammar.
fuzz_target events_decode services/events/fuzz/decode_fuzz.cc services/events/wire.cc services/events/topic.cc
