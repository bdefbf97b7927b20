# Unit tests of the local_epmd strategy through its built .so, on the shared loop host, with the
# fake EPMD of plugins/common/epmd/test.
clusterd_plugin_test(local_epmd_plugin_test
  PLUGIN local_epmd
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/local_epmd_test.cpp
  INCLUDES ${_clusterd_plugins_dir}/common/epmd/test ${_clusterd_plugins_dir}/common/epmd)
