# Unit tests of the erlang transport.
# Through its built .so, on the shared loop host, against real BEAM nodes on loopback (erl, epmd
# from erlang-base) and an ei probe node (libei).
find_program(CLUSTERD_TEST_ERL erl REQUIRED)
find_program(CLUSTERD_TEST_EPMD epmd REQUIRED)
clusterd_plugin_test(erlang_plugin_test
  PLUGIN erlang
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/erlang_test.cpp
  LINK clusterd::ei
  DEFINES CLUSTERD_TEST_ERL="${CLUSTERD_TEST_ERL}" CLUSTERD_TEST_EPMD="${CLUSTERD_TEST_EPMD}"
  TIMEOUT 120)

# The transport's per-node Session against a scripted DistConnection (no BEAM, no libei).
find_package(Threads REQUIRED)
set(_clusterd_erlang_dir ${CMAKE_CURRENT_LIST_DIR}/..)
clusterd_plugin_test(erlang_session_test
  SOURCES ${_clusterd_erlang_dir}/test/session_test.cpp ${_clusterd_erlang_dir}/session.cpp
          ${_clusterd_erlang_dir}/io.cpp ${_clusterd_erlang_dir}/epmd_query.cpp
  LINK clusterd_epmd Threads::Threads
  TIMEOUT 60)
