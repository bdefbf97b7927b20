# Unit tests of the postgres strategy's pure parts (notify.cpp compiled in). Usable from the
# clusterd tree (tests/unit/sdk.cmake) and from this project's own build
# (-DCLUSTERD_POSTGRES_TESTS=ON). The strategy itself runs in tests/integration/test_postgres.py
# (the real daemon against a real PostgreSQL started by the test).
set(_pg_dir ${CMAKE_CURRENT_LIST_DIR}/..)
find_package(GTest REQUIRED)
include(GoogleTest)
add_executable(postgres_notify_test ${_pg_dir}/test/notify_test.cpp ${_pg_dir}/notify.cpp)
target_include_directories(postgres_notify_test PRIVATE ${_pg_dir})
target_link_libraries(postgres_notify_test PRIVATE GTest::gtest_main clusterd::sdk)
target_compile_features(postgres_notify_test PRIVATE cxx_std_20)
if(COMMAND clusterd_warnings)
  clusterd_warnings(postgres_notify_test)
else()
  target_compile_options(postgres_notify_test PRIVATE -Wall -Wextra -Werror)
endif()
gtest_discover_tests(postgres_notify_test DISCOVERY_TIMEOUT 30)
