# Unit tests of the SDK's C++ wrapper (clusterd/plugin.hpp) and of the in-tree plugins built
# with it. Included by tests/unit/CMakeLists.txt (after find_package(GTest) and
# include(GoogleTest)); paths are relative to this file so that it works from any directory.
set(_clusterd_sdk_tests_dir ${CMAKE_CURRENT_LIST_DIR})
if(NOT COMMAND gtest_discover_tests)
  include(GoogleTest)
endif()

# The wrapper against a fake host table, in C++20 (the project's standard) and again in C++17,
# the oldest standard plugin.hpp promises to support.
add_executable(plugin_hpp_test ${_clusterd_sdk_tests_dir}/plugin_hpp_test.cpp)
target_link_libraries(plugin_hpp_test PRIVATE GTest::gtest_main clusterd::sdk)
clusterd_warnings(plugin_hpp_test)
gtest_discover_tests(plugin_hpp_test DISCOVERY_TIMEOUT 30)

add_executable(plugin_hpp_cxx17_test ${_clusterd_sdk_tests_dir}/plugin_hpp_test.cpp)
target_link_libraries(plugin_hpp_cxx17_test PRIVATE GTest::gtest_main clusterd::sdk)
set_target_properties(plugin_hpp_cxx17_test PROPERTIES CXX_STANDARD 17)
clusterd_warnings(plugin_hpp_cxx17_test)
gtest_discover_tests(plugin_hpp_cxx17_test TEST_PREFIX "cxx17." DISCOVERY_TIMEOUT 30)

# The in-tree plugins, loaded from their built .so with dlopen and driven by a small real
# event loop (poll) that implements the host table: tests the artefact that ships.
set(_clusterd_plugins_dir ${_clusterd_sdk_tests_dir}/../../plugins)
if(TARGET epmd)
  add_executable(epmd_plugin_test ${_clusterd_plugins_dir}/strategies/epmd/test/epmd_test.cpp)
  target_link_libraries(epmd_plugin_test PRIVATE GTest::gtest_main clusterd::sdk ${CMAKE_DL_LIBS})
  target_compile_definitions(epmd_plugin_test PRIVATE CLUSTERD_TEST_PLUGIN="$<TARGET_FILE:epmd>")
  add_dependencies(epmd_plugin_test epmd)
  clusterd_warnings(epmd_plugin_test)
  gtest_discover_tests(epmd_plugin_test DISCOVERY_TIMEOUT 30)
endif()
if(TARGET command)
  add_executable(command_plugin_test ${_clusterd_plugins_dir}/transports/command/test/command_test.cpp)
  target_link_libraries(command_plugin_test PRIVATE GTest::gtest_main clusterd::sdk ${CMAKE_DL_LIBS})
  target_compile_definitions(command_plugin_test PRIVATE CLUSTERD_TEST_PLUGIN="$<TARGET_FILE:command>")
  add_dependencies(command_plugin_test command)
  clusterd_warnings(command_plugin_test)
  gtest_discover_tests(command_plugin_test DISCOVERY_TIMEOUT 30)
endif()
