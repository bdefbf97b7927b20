# Unit tests of the command transport through its built .so, on the shared loop host.
clusterd_plugin_test(command_plugin_test
  PLUGIN command
  LINK clusterd_services_process
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/command_test.cpp)
