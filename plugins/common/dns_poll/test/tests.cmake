# Unit tests of the DNS strategies' shared core (pure parts: names, re-query rule, config
# checks). tests/unit/sdk.cmake includes this file when the target named after this directory
# exists, i.e. the dns_poll strategy; the plugins' behaviour against a real DNS server is tested
# by tests/integration/test_dns.py.
set(_dns_poll_dir ${CMAKE_CURRENT_LIST_DIR}/..)
add_executable(dns_poll_core_test ${_dns_poll_dir}/test/dns_poll_test.cpp)
target_link_libraries(dns_poll_core_test PRIVATE GTest::gtest_main clusterd_dns_poll)
clusterd_warnings(dns_poll_core_test)
gtest_discover_tests(dns_poll_core_test DISCOVERY_TIMEOUT 30)
