# Unit tests of the kubernetes strategy's parser (k8s_parse.cpp compiled in directly) against
# the recorded API answers in tests/fixtures/kubernetes. The plugin's behaviour (list, watch,
# errors, TLS) is tested with the real daemon: tests/integration/test_kubernetes.py.
set(_clusterd_k8s_dir ${_clusterd_plugins_dir}/strategies/kubernetes)
find_package(RapidJSON REQUIRED)
add_executable(kubernetes_parse_test ${_clusterd_k8s_dir}/test/k8s_parse_test.cpp
                                     ${_clusterd_k8s_dir}/k8s_parse.cpp)
target_include_directories(kubernetes_parse_test PRIVATE ${_clusterd_k8s_dir}
                                                   ${_clusterd_plugins_dir}/common/text)
target_include_directories(kubernetes_parse_test SYSTEM PRIVATE ${RAPIDJSON_INCLUDE_DIRS})
target_link_libraries(kubernetes_parse_test PRIVATE GTest::gtest_main)
target_compile_definitions(kubernetes_parse_test PRIVATE
  CLUSTERD_K8S_FIXTURES="${_clusterd_plugins_dir}/../tests/fixtures/kubernetes")
clusterd_warnings(kubernetes_parse_test)
gtest_discover_tests(kubernetes_parse_test DISCOVERY_TIMEOUT 30)
