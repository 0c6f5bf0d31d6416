# Sourced by fuzz/run.
fuzz_target wring transports/shm/fuzz/wring_fuzz.cc transports/shm/wring.cc
