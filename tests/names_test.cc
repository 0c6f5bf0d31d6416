// base/names: which channel names are valid, and why the others are refused.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include "base/names.h"

using fwipc::validate_channel_name;

TEST_CASE("shouldAcceptNamesOfLettersDigitsDotsUnderscoresAndDashes") {
  CHECK(validate_channel_name("logd") == 0);
  CHECK(validate_channel_name("app.cam-0_raw") == 0);
  CHECK(validate_channel_name("...") == 0);
  CHECK(validate_channel_name(std::string(fwipc::kNameMax, 'a').c_str()) == 0);
}

TEST_CASE("shouldRefuseNamesThatCouldEscapeTheRuntimeDirectory") {
  CHECK(validate_channel_name(".") == -EINVAL);
  CHECK(validate_channel_name("..") == -EINVAL);
  CHECK(validate_channel_name("a/b") == -EINVAL);
  CHECK(validate_channel_name("../etc") == -EINVAL);
}

TEST_CASE("shouldRefuseEmptyNullAndForeignCharacters") {
  CHECK(validate_channel_name(nullptr) == -EINVAL);
  CHECK(validate_channel_name("") == -EINVAL);
  CHECK(validate_channel_name("a b") == -EINVAL);
  CHECK(validate_channel_name("caf\xc3\xa9") == -EINVAL);
  CHECK(validate_channel_name("tab\t") == -EINVAL);
}

TEST_CASE("shouldRefuseNamesLongerThan63WithNameTooLong") {
  CHECK(validate_channel_name(std::string(fwipc::kNameMax + 1, 'a').c_str()) == -ENAMETOOLONG);
  CHECK(validate_channel_name(std::string(4096, 'a').c_str()) == -ENAMETOOLONG);
}
