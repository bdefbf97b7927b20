# Unit tests of the erlang_hosts strategy: through its built .so (on the shared loop host, with
# the fake EPMD of plugins/common/epmd/test), and its .hosts.erlang parser compiled in directly.
set(_clusterd_erlang_hosts_dir ${CMAKE_CURRENT_LIST_DIR}/..)
clusterd_plugin_test(erlang_hosts_plugin_test
  PLUGIN erlang_hosts
  SOURCES ${_clusterd_erlang_hosts_dir}/test/erlang_hosts_test.cpp
          ${_clusterd_erlang_hosts_dir}/test/hosts_erlang_test.cpp
          ${_clusterd_erlang_hosts_dir}/hosts_erlang.cpp
  INCLUDES ${_clusterd_plugins_dir}/common/epmd/test ${_clusterd_plugins_dir}/common/epmd
           ${_clusterd_erlang_hosts_dir})
