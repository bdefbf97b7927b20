# Unit tests of the etcd strategy's gateway parser (etcd_parse.cpp compiled in directly) on
# answers recorded from a real etcd 3.4. The plugin's behaviour (register, watch, lease expiry,
# restart, auth, TLS) is tested against a real etcd: tests/integration/test_etcd.py.
set(_clusterd_etcd_dir ${_clusterd_plugins_dir}/strategies/etcd)
find_package(nlohmann_json 3 REQUIRED)
add_executable(etcd_parse_test ${_clusterd_etcd_dir}/test/etcd_parse_test.cpp
                               ${_clusterd_etcd_dir}/etcd_parse.cpp)
target_include_directories(etcd_parse_test PRIVATE ${_clusterd_etcd_dir} ${_clusterd_plugins_dir}/common/text)
target_link_libraries(etcd_parse_test PRIVATE GTest::gtest_main nlohmann_json::nlohmann_json)
clusterd_warnings(etcd_parse_test)
gtest_discover_tests(etcd_parse_test DISCOVERY_TIMEOUT 30)
