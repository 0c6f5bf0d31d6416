# Sourced by fuzz/run.
fuzz_target wring transports/shm/fuzz/wring_fuzz.cc transports/shm/wring.cc base/membarrier.cc
fuzz_target directory transports/shm/fuzz/directory_fuzz.cc transports/shm/directory.cc
