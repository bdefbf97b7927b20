# Unit tests of the epmd strategy through its built .so, on the shared loop host, with the fake
# EPMD of plugins/common/epmd/test.
clusterd_plugin_test(epmd_plugin_test
  PLUGIN epmd
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/epmd_test.cpp
  INCLUDES ${_clusterd_plugins_dir}/common/epmd/test ${_clusterd_plugins_dir}/common/epmd)
