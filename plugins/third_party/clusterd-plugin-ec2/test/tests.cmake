# Unit tests of the ec2 strategy's pure parts (ec2_api.cpp compiled in), against the fixtures
# in test/fixtures. Usable from the clusterd tree (tests/unit/sdk.cmake) and from this
# project's own build (-DCLUSTERD_EC2_TESTS=ON). The strategy itself runs in
# tests/integration/test_ec2.py (the real daemon against a local EC2/IMDS server).
set(_ec2_dir ${CMAKE_CURRENT_LIST_DIR}/..)
find_package(EXPAT REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(GTest REQUIRED)
include(GoogleTest)
add_executable(ec2_api_test ${_ec2_dir}/test/ec2_api_test.cpp ${_ec2_dir}/ec2_api.cpp)
target_include_directories(ec2_api_test PRIVATE ${_ec2_dir})
target_link_libraries(ec2_api_test PRIVATE GTest::gtest_main EXPAT::EXPAT
                                           nlohmann_json::nlohmann_json)
target_compile_features(ec2_api_test PRIVATE cxx_std_20)
target_compile_definitions(ec2_api_test PRIVATE
                           CLUSTERD_EC2_FIXTURES="${CMAKE_CURRENT_LIST_DIR}/fixtures")
if(COMMAND clusterd_warnings)
  clusterd_warnings(ec2_api_test)
else()
  target_compile_options(ec2_api_test PRIVATE -Wall -Wextra -Werror)
endif()
gtest_discover_tests(ec2_api_test DISCOVERY_TIMEOUT 30)
