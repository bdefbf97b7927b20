# Unit tests of the rancher strategy's metadata parser, against the fixture in
# tests/fixtures/rancher and hand-written malformed replies. The strategy itself runs in
# tests/integration/test_rancher.py (the real daemon against a local HTTP server).
set(_rancher_dir ${CMAKE_CURRENT_LIST_DIR}/..)
find_package(nlohmann_json 3 REQUIRED)
add_executable(rancher_metadata_test ${_rancher_dir}/test/rancher_metadata_test.cpp
                                     ${_rancher_dir}/rancher_metadata.cpp)
target_include_directories(rancher_metadata_test PRIVATE ${_rancher_dir})
target_link_libraries(rancher_metadata_test PRIVATE GTest::gtest_main nlohmann_json::nlohmann_json)
target_compile_definitions(rancher_metadata_test PRIVATE
  CLUSTERD_RANCHER_FIXTURES="${CMAKE_CURRENT_LIST_DIR}/../../../../tests/fixtures/rancher")
clusterd_warnings(rancher_metadata_test)
gtest_discover_tests(rancher_metadata_test DISCOVERY_TIMEOUT 30)
