# Unit tests of the consul strategy's pure parts (consul_api.cpp compiled in), on replies shaped
# as Consul's API documentation shows them. Usable from the clusterd tree (tests/unit/sdk.cmake)
# and from this project's own build (-DCLUSTERD_CONSUL_TESTS=ON). The strategy itself runs in
# tests/integration/test_consul.py (the real daemon against the Consul stand-in).
set(_consul_dir ${CMAKE_CURRENT_LIST_DIR}/..)
find_package(nlohmann_json 3 REQUIRED)
find_package(GTest REQUIRED)
include(GoogleTest)
add_executable(consul_api_test ${_consul_dir}/test/consul_api_test.cpp ${_consul_dir}/consul_api.cpp)
target_include_directories(consul_api_test PRIVATE ${_consul_dir})
target_link_libraries(consul_api_test PRIVATE GTest::gtest_main nlohmann_json::nlohmann_json)
target_compile_features(consul_api_test PRIVATE cxx_std_20)
if(COMMAND clusterd_warnings)
  clusterd_warnings(consul_api_test)
else()
  target_compile_options(consul_api_test PRIVATE -Wall -Wextra -Werror)
endif()
gtest_discover_tests(consul_api_test DISCOVERY_TIMEOUT 30)
