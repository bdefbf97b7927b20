# Unit tests of the partisan transport's wire codec, compiled in directly (no plugin, no host):
# round trips, byte-exact encodings from docs/overlay-protocol.md, malformations, the stream
# splitter. Also checks that the fuzz seeds in tests/fuzz/corpus/partisan are current.
# Behaviour (sockets, handshake, membership) is tested with real daemons in tests/integration.
set(_clusterd_partisan_dir ${_clusterd_plugins_dir}/transports/partisan)
add_executable(partisan_wire_test ${_clusterd_partisan_dir}/test/wire_test.cpp
                                  ${_clusterd_partisan_dir}/wire.cpp)
target_link_libraries(partisan_wire_test PRIVATE GTest::gtest_main)
target_include_directories(partisan_wire_test PRIVATE ${_clusterd_partisan_dir})
target_compile_definitions(partisan_wire_test PRIVATE
  CLUSTERD_PARTISAN_CORPUS="${_clusterd_plugins_dir}/../tests/fuzz/corpus/partisan")
clusterd_warnings(partisan_wire_test)
gtest_discover_tests(partisan_wire_test TEST_PREFIX "partisan_wire." DISCOVERY_TIMEOUT 30)

# The control API's JSON (json_line.cpp): in-place request parsing, validated escaping.
find_package(RapidJSON REQUIRED)
add_executable(partisan_json_test ${_clusterd_partisan_dir}/test/json_line_test.cpp
                                  ${_clusterd_partisan_dir}/json_line.cpp)
target_link_libraries(partisan_json_test PRIVATE GTest::gtest_main)
target_include_directories(partisan_json_test PRIVATE ${_clusterd_partisan_dir})
target_include_directories(partisan_json_test SYSTEM PRIVATE ${RAPIDJSON_INCLUDE_DIRS})
clusterd_warnings(partisan_json_test)
gtest_discover_tests(partisan_json_test TEST_PREFIX "partisan_json." DISCOVERY_TIMEOUT 30)

# The scalable membership core (swim.cpp) on a simulated network of 10..500 nodes: simulated
# time, so it runs in seconds whatever N.
add_executable(partisan_swim_test ${_clusterd_partisan_dir}/test/swim_test.cpp
                                  ${_clusterd_partisan_dir}/swim.cpp
                                  ${_clusterd_partisan_dir}/wire.cpp)
target_link_libraries(partisan_swim_test PRIVATE GTest::gtest_main)
target_include_directories(partisan_swim_test PRIVATE ${_clusterd_partisan_dir})
clusterd_warnings(partisan_swim_test)
gtest_discover_tests(partisan_swim_test TEST_PREFIX "partisan_swim." DISCOVERY_TIMEOUT 30)
