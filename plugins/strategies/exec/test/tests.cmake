# Unit tests of the exec strategy's line protocol (the pure exec_lines.cpp); the plugin itself is
# tested end to end with real commands by tests/integration/test_exec.py.
add_executable(exec_lines_test ${CMAKE_CURRENT_LIST_DIR}/exec_lines_test.cpp
                               ${CMAKE_CURRENT_LIST_DIR}/../exec_lines.cpp)
target_include_directories(exec_lines_test PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(exec_lines_test PRIVATE GTest::gtest_main)
clusterd_warnings(exec_lines_test)
gtest_discover_tests(exec_lines_test DISCOVERY_TIMEOUT 30)
