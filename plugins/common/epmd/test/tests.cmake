# Unit tests of the EPMD protocol, of the local-EPMD pollers' schedule and of the asynchronous
# EPMD client (clusterd_epmd), the client on the shared loop host against a fake EPMD
# (epmd_test_support.hpp, which the tests of the strategies built on clusterd_epmd share).
# tests/unit/sdk.cmake includes this file when clusterd_epmd exists.
clusterd_plugin_test(epmd_protocol_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/epmd_parse_test.cpp ${CMAKE_CURRENT_LIST_DIR}/epmd_client_test.cpp
          ${CMAKE_CURRENT_LIST_DIR}/poll_schedule_test.cpp
  INCLUDES ${CMAKE_CURRENT_LIST_DIR}
  LINK clusterd_epmd)
