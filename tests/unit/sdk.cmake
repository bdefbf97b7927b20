# Unit tests of the SDK's C++ wrapper (clusterd/plugin.hpp) and of the in-tree plugins built
# with it. Included by tests/unit/CMakeLists.txt (after find_package(GTest) and
# include(GoogleTest)); paths are relative to this file so that it works from any directory.
set(_clusterd_sdk_tests_dir ${CMAKE_CURRENT_LIST_DIR})
if(NOT COMMAND gtest_discover_tests)
  include(GoogleTest)
endif()

# tests/support/plugin_test_host.hpp: what the plugin tests share (a loop host that implements
# the host table, a config view, the plugin loader). clusterd_plugin_test_support brings its
# include path, the SDK and dlopen.
get_filename_component(_clusterd_test_support_dir ${_clusterd_sdk_tests_dir}/../support ABSOLUTE)
add_library(clusterd_plugin_test_support INTERFACE)
target_include_directories(clusterd_plugin_test_support INTERFACE ${_clusterd_test_support_dir})
target_link_libraries(clusterd_plugin_test_support INTERFACE GTest::gtest clusterd::sdk
                                                             ${CMAKE_DL_LIBS})

# The wrapper against a fake host table, in C++20 (the project's standard) and again in C++17,
# the oldest standard plugin.hpp promises to support.
add_executable(plugin_hpp_test ${_clusterd_sdk_tests_dir}/plugin_hpp_test.cpp)
target_link_libraries(plugin_hpp_test PRIVATE GTest::gtest_main clusterd_plugin_test_support)
clusterd_warnings(plugin_hpp_test)
gtest_discover_tests(plugin_hpp_test DISCOVERY_TIMEOUT 30)

add_executable(plugin_hpp_cxx17_test ${_clusterd_sdk_tests_dir}/plugin_hpp_test.cpp)
target_link_libraries(plugin_hpp_cxx17_test PRIVATE GTest::gtest_main clusterd_plugin_test_support)
set_target_properties(plugin_hpp_cxx17_test PROPERTIES CXX_STANDARD 17)
clusterd_warnings(plugin_hpp_cxx17_test)
gtest_discover_tests(plugin_hpp_cxx17_test TEST_PREFIX "cxx17." DISCOVERY_TIMEOUT 30)

# The in-tree plugins, loaded from their built .so with dlopen and driven by the shared loop host
# (a small real poll() event loop): tests the artefact that ships.
set(_clusterd_plugins_dir ${_clusterd_sdk_tests_dir}/../../plugins)

# clusterd_plugin_test(<name> SOURCES <files...> [PLUGIN <target>] [INCLUDES <dirs...>]
#                      [LINK <libs...>] [DEFINES <defs...>] [TIMEOUT <seconds>])
# A GoogleTest executable with the shared test support. PLUGIN: the plugin under test, whose
# built .so the test loads as CLUSTERD_TEST_PLUGIN (built first). TIMEOUT: of each test.
function(clusterd_plugin_test name)
  cmake_parse_arguments(ARG "" "PLUGIN;TIMEOUT" "SOURCES;INCLUDES;LINK;DEFINES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE GTest::gtest_main clusterd_plugin_test_support ${ARG_LINK})
  target_include_directories(${name} PRIVATE ${ARG_INCLUDES})
  target_compile_definitions(${name} PRIVATE ${ARG_DEFINES})
  if(ARG_PLUGIN)
    target_compile_definitions(${name} PRIVATE
                               CLUSTERD_TEST_PLUGIN="$<TARGET_FILE:${ARG_PLUGIN}>")
    add_dependencies(${name} ${ARG_PLUGIN})
  endif()
  clusterd_warnings(${name})
  if(ARG_TIMEOUT)
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT ${ARG_TIMEOUT})
  else()
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30)
  endif()
endfunction()

# A plugin registers its own tests in plugins/<kind>/<name>/test/tests.cmake (GTest,
# clusterd::sdk and clusterd_plugin_test are available; _clusterd_plugins_dir points at
# plugins/). Included only when the plugin's target <name> exists, so a build without that
# plugin still configures; for the libraries in plugins/common, also when clusterd_<name> does.
# plugins/third_party/* are separate projects, never targets here: their tests.cmake compile
# the pure sources they test themselves.
file(GLOB _clusterd_plugin_test_files CONFIGURE_DEPENDS
     ${_clusterd_plugins_dir}/*/*/test/tests.cmake)
foreach(_file IN LISTS _clusterd_plugin_test_files)
  get_filename_component(_plugin_dir ${_file} DIRECTORY)
  get_filename_component(_plugin_dir ${_plugin_dir} DIRECTORY)
  get_filename_component(_plugin_name ${_plugin_dir} NAME)
  get_filename_component(_plugin_kind ${_plugin_dir} DIRECTORY)
  get_filename_component(_plugin_kind ${_plugin_kind} NAME)
  if(TARGET ${_plugin_name} OR (_plugin_kind STREQUAL "common" AND TARGET clusterd_${_plugin_name})
     OR _plugin_kind STREQUAL "third_party")
    include(${_file})
  endif()
endforeach()
