# Sourced by fuzz/run (once it sources transports/*/fuzz/targets.sh too).
fuzz_target wring transports/shm/fuzz/wring_fuzz.cc transports/shm/wring.cc
