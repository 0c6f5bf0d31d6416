# logd's decoders of other processes' bytes (sourced by fuzz/run).
fuzz_target logd_record services/logd/fuzz/record_fuzz.cc services/logd/text.cc services/logd/syslog_parse.cc
fuzz_target logd_syslog services/logd/fuzz/syslog_fuzz.cc services/logd/syslog_parse.cc
