# Unit tests of the gossip strategy's pure parts, compiled in directly: the heartbeat codec and
# the crypto envelope, byte for byte against tests/fixtures/gossip (libcluster's packets).
# Behaviour (sockets, timers, the daemon) is tested in tests/integration/test_gossip.py.
set(_clusterd_gossip_dir ${_clusterd_plugins_dir}/strategies/gossip)
add_executable(gossip_codec_test ${_clusterd_gossip_dir}/test/heartbeat_test.cpp
                                 ${_clusterd_gossip_dir}/test/envelope_test.cpp
                                 ${_clusterd_gossip_dir}/heartbeat.cpp
                                 ${_clusterd_gossip_dir}/envelope.cpp)
target_link_libraries(gossip_codec_test PRIVATE GTest::gtest_main clusterd_crypto clusterd::sdk)
target_include_directories(gossip_codec_test PRIVATE ${_clusterd_gossip_dir})
target_compile_definitions(gossip_codec_test PRIVATE
  CLUSTERD_GOSSIP_FIXTURES="${_clusterd_plugins_dir}/../tests/fixtures/gossip")
clusterd_warnings(gossip_codec_test)
gtest_discover_tests(gossip_codec_test DISCOVERY_TIMEOUT 30)
