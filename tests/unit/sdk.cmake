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
# The EPMD protocol and client (plugins/common/epmd) and the strategies built on it; their
# tests share epmd_test_support.hpp (a loop host and a fake EPMD on 127.0.0.1 / ::1).
set(_clusterd_epmd_test_dir ${_clusterd_plugins_dir}/common/epmd/test)
if(TARGET clusterd_epmd)
  add_executable(epmd_protocol_test ${_clusterd_epmd_test_dir}/epmd_parse_test.cpp
                                    ${_clusterd_epmd_test_dir}/epmd_client_test.cpp)
  target_link_libraries(epmd_protocol_test PRIVATE GTest::gtest_main clusterd_epmd)
  target_include_directories(epmd_protocol_test PRIVATE ${_clusterd_epmd_test_dir})
  clusterd_warnings(epmd_protocol_test)
  gtest_discover_tests(epmd_protocol_test DISCOVERY_TIMEOUT 30)
endif()
if(TARGET epmd)
  add_executable(epmd_plugin_test ${_clusterd_plugins_dir}/strategies/epmd/test/epmd_test.cpp)
  target_link_libraries(epmd_plugin_test PRIVATE GTest::gtest_main clusterd::sdk ${CMAKE_DL_LIBS})
  target_include_directories(epmd_plugin_test PRIVATE ${_clusterd_epmd_test_dir}
                                                      ${_clusterd_plugins_dir}/common/epmd)
  target_compile_definitions(epmd_plugin_test PRIVATE CLUSTERD_TEST_PLUGIN="$<TARGET_FILE:epmd>")
  add_dependencies(epmd_plugin_test epmd)
  clusterd_warnings(epmd_plugin_test)
  gtest_discover_tests(epmd_plugin_test DISCOVERY_TIMEOUT 30)
endif()
if(TARGET local_epmd)
  add_executable(local_epmd_plugin_test
                 ${_clusterd_plugins_dir}/strategies/local_epmd/test/local_epmd_test.cpp)
  target_link_libraries(local_epmd_plugin_test PRIVATE GTest::gtest_main clusterd::sdk
                                                       ${CMAKE_DL_LIBS})
  target_include_directories(local_epmd_plugin_test PRIVATE ${_clusterd_epmd_test_dir}
                                                            ${_clusterd_plugins_dir}/common/epmd)
  target_compile_definitions(local_epmd_plugin_test
                             PRIVATE CLUSTERD_TEST_PLUGIN="$<TARGET_FILE:local_epmd>")
  add_dependencies(local_epmd_plugin_test local_epmd)
  clusterd_warnings(local_epmd_plugin_test)
  gtest_discover_tests(local_epmd_plugin_test DISCOVERY_TIMEOUT 30)
endif()
if(TARGET erlang_hosts)
  # The strategy through its .so, and its .hosts.erlang parser compiled in directly.
  set(_clusterd_erlang_hosts_dir ${_clusterd_plugins_dir}/strategies/erlang_hosts)
  add_executable(erlang_hosts_plugin_test ${_clusterd_erlang_hosts_dir}/test/erlang_hosts_test.cpp
                                          ${_clusterd_erlang_hosts_dir}/test/hosts_erlang_test.cpp
                                          ${_clusterd_erlang_hosts_dir}/hosts_erlang.cpp)
  target_link_libraries(erlang_hosts_plugin_test PRIVATE GTest::gtest_main clusterd::sdk
                                                         ${CMAKE_DL_LIBS})
  target_include_directories(erlang_hosts_plugin_test PRIVATE ${_clusterd_epmd_test_dir}
                                                              ${_clusterd_plugins_dir}/common/epmd
                                                              ${_clusterd_erlang_hosts_dir})
  target_compile_definitions(erlang_hosts_plugin_test
                             PRIVATE CLUSTERD_TEST_PLUGIN="$<TARGET_FILE:erlang_hosts>")
  add_dependencies(erlang_hosts_plugin_test erlang_hosts)
  clusterd_warnings(erlang_hosts_plugin_test)
  gtest_discover_tests(erlang_hosts_plugin_test DISCOVERY_TIMEOUT 30)
endif()
if(TARGET command)
  add_executable(command_plugin_test ${_clusterd_plugins_dir}/transports/command/test/command_test.cpp)
  target_link_libraries(command_plugin_test PRIVATE GTest::gtest_main clusterd::sdk ${CMAKE_DL_LIBS})
  target_compile_definitions(command_plugin_test PRIVATE CLUSTERD_TEST_PLUGIN="$<TARGET_FILE:command>")
  add_dependencies(command_plugin_test command)
  clusterd_warnings(command_plugin_test)
  gtest_discover_tests(command_plugin_test DISCOVERY_TIMEOUT 30)
endif()
if(TARGET erlang)
  # Real BEAM nodes on loopback (erl, epmd from erlang-base) and an ei probe node (libei).
  find_program(CLUSTERD_TEST_ERL erl REQUIRED)
  find_program(CLUSTERD_TEST_EPMD epmd REQUIRED)
  add_executable(erlang_plugin_test ${_clusterd_plugins_dir}/transports/erlang/test/erlang_test.cpp)
  target_link_libraries(erlang_plugin_test PRIVATE GTest::gtest_main clusterd::sdk clusterd::ei
                                                   ${CMAKE_DL_LIBS})
  target_compile_definitions(erlang_plugin_test PRIVATE
    CLUSTERD_TEST_PLUGIN="$<TARGET_FILE:erlang>"
    CLUSTERD_TEST_ERL="${CLUSTERD_TEST_ERL}"
    CLUSTERD_TEST_EPMD="${CLUSTERD_TEST_EPMD}")
  add_dependencies(erlang_plugin_test erlang)
  clusterd_warnings(erlang_plugin_test)
  gtest_discover_tests(erlang_plugin_test DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120)

  # The transport's per-node Session against a scripted DistConnection (no BEAM, no libei).
  find_package(Threads REQUIRED)
  set(_clusterd_erlang_dir ${_clusterd_plugins_dir}/transports/erlang)
  add_executable(erlang_session_test ${_clusterd_erlang_dir}/test/session_test.cpp
    ${_clusterd_erlang_dir}/session.cpp ${_clusterd_erlang_dir}/io.cpp
    ${_clusterd_erlang_dir}/epmd_query.cpp)
  target_link_libraries(erlang_session_test PRIVATE GTest::gtest_main clusterd_epmd
                                                    Threads::Threads)
  clusterd_warnings(erlang_session_test)
  gtest_discover_tests(erlang_session_test DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 60)
endif()
