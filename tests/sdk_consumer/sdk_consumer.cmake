# cmake -P script run by the sdk_consumer test (variables from tests/sdk_consumer/CMakeLists.txt):
#  1. cmake --install BUILD_DIR --prefix WORK_DIR/stage
#  2. configure + build + install sdk/examples/minimal-{c,cpp} with CMAKE_PREFIX_PATH=stage
#  3. build minimal-c with plain cc, `pkg-config --cflags clusterd-sdk` and its version_script
#  4. every resulting plugin (and every plugin installed to the stage) exports exactly one
#     dynamic symbol, clusterd_plugin_entry_v1, and has no undefined references to host symbols
#  5. the staged daemon describes them; 6. its `check` applies their constraints and validate()
#  7. an application on libclusterd-client (sdk/examples/client-c), with find_package
#     (clusterd::client) and with plain cc + `pkg-config --cflags --libs clusterd-client`; both
#     run, and fail as they should with no daemon at the socket
cmake_minimum_required(VERSION 3.22)

foreach(var BUILD_DIR WORK_DIR EXAMPLES_DIR LIBDIR PLUGIN_INSTALL_DIR GENERATOR C_COMPILER CXX_COMPILER CC NM PKG_CONFIG)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "sdk_consumer.cmake: ${var} is not set")
  endif()
endforeach()

set(stage "${WORK_DIR}/stage")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}")
  endif()
endfunction()

# Every check of one plugin file.
function(check_plugin so)
  if(NOT EXISTS "${so}")
    message(FATAL_ERROR "missing plugin ${so}")
  endif()
  execute_process(COMMAND "${NM}" -D --defined-only "${so}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm -D --defined-only ${so} failed: ${err}")
  endif()
  string(STRIP "${out}" out)
  string(REGEX REPLACE "\n" ";" lines "${out}")
  list(LENGTH lines n)
  if(NOT n EQUAL 1 OR NOT out MATCHES "^[0-9a-fA-F]+ [A-Za-z] clusterd_plugin_entry_v1$")
    message(FATAL_ERROR "${so} must export exactly clusterd_plugin_entry_v1; nm -D --defined-only says:\n${out}")
  endif()

  execute_process(COMMAND "${NM}" -D --undefined-only "${so}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "nm -D --undefined-only ${so} failed: ${err}")
  endif()
  string(REGEX REPLACE "\n" ";" lines "${out}")
  foreach(line IN LISTS lines)
    string(STRIP "${line}" line)
    if(line STREQUAL "")
      continue()
    endif()
    if(line MATCHES "clusterd")
      message(FATAL_ERROR "${so} references a host symbol: ${line}")
    endif()
    # A strong undefined symbol without a version does not come from a system library (libc,
    # libstdc++, libgcc all version theirs), so it would have to come from the process: the
    # host. Sanitizer runtimes don't version theirs, hence the exception.
    if(line MATCHES "^U " AND NOT line MATCHES "@" AND NOT SANITIZE)
      message(FATAL_ERROR "${so} needs an unversioned symbol, probably from the host: ${line}")
    endif()
  endforeach()
  message(STATUS "ok: ${so}")
endfunction()

# 1. Stage the installation. An empty DESTDIR keeps everything under the prefix.
message(STATUS "installing ${BUILD_DIR} to ${stage}")
set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
run(${CMAKE_COMMAND} -E env --unset=DESTDIR ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${stage}" ${config_args})
foreach(f include/clusterd/clusterd.h include/clusterd/plugin.hpp
          ${LIBDIR}/cmake/ClusterdSDK/ClusterdSDKConfig.cmake
          ${LIBDIR}/cmake/ClusterdSDK/ClusterdSDKConfigVersion.cmake
          ${LIBDIR}/cmake/ClusterdSDK/ClusterdPlugin.cmake
          ${LIBDIR}/cmake/ClusterdSDK/plugin.version
          ${LIBDIR}/pkgconfig/clusterd-sdk.pc
          include/clusterd/client.h ${LIBDIR}/libclusterd-client.a
          ${LIBDIR}/pkgconfig/clusterd-client.pc)
  if(NOT EXISTS "${stage}/${f}")
    message(FATAL_ERROR "the installation lacks ${f}")
  endif()
endforeach()
set(plugindir "${stage}/${LIBDIR}/clusterd/plugins")

# 2. The examples, with CMake, as a third party builds them.
set(warn "-Wall -Wextra -Wpedantic -Werror")
foreach(example minimal-c minimal-cpp)
  set(bin "${WORK_DIR}/${example}")
  message(STATUS "building ${example} against ${stage}")
  run(${CMAKE_COMMAND} -S "${EXAMPLES_DIR}/${example}" -B "${bin}" -G "${GENERATOR}"
      "-DCMAKE_PREFIX_PATH=${stage}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
      -DCMAKE_BUILD_TYPE=Release
      "-DCMAKE_C_COMPILER=${C_COMPILER}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
      "-DCMAKE_C_FLAGS=${warn}" "-DCMAKE_CXX_FLAGS=${warn}")
  # It must have used the staged SDK, not some other installation.
  file(STRINGS "${bin}/CMakeCache.txt" sdk_dir REGEX "^ClusterdSDK_DIR:")
  string(FIND "${sdk_dir}" "=${stage}/" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${example} found the SDK elsewhere: ${sdk_dir}")
  endif()
  run(${CMAKE_COMMAND} --build "${bin}" --config Release)
  run(${CMAKE_COMMAND} -E env --unset=DESTDIR ${CMAKE_COMMAND} --install "${bin}" --config Release)
endforeach()
check_plugin("${WORK_DIR}/minimal-c/clusterd-example_c.so")
check_plugin("${WORK_DIR}/minimal-cpp/clusterd-example_cpp.so")
# Installed where the package says plugins go (CLUSTERD_PLUGIN_INSTALL_DIR = <prefix>/<libdir>/clusterd/plugins).
check_plugin("${plugindir}/clusterd-example_c.so")
check_plugin("${plugindir}/clusterd-example_cpp.so")

# 3. Plain cc with pkg-config.
set(pc_env ${CMAKE_COMMAND} -E env --unset=PKG_CONFIG_SYSROOT_DIR "PKG_CONFIG_PATH=${stage}/${LIBDIR}/pkgconfig")
function(pc out)
  execute_process(COMMAND ${pc_env} "${PKG_CONFIG}" ${ARGN} clusterd-sdk
                  RESULT_VARIABLE rc OUTPUT_VARIABLE value ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config ${ARGN} clusterd-sdk failed: ${err}")
  endif()
  set(${out} "${value}" PARENT_SCOPE)
endfunction()
pc(cflags --cflags)
pc(version_script --variable=version_script)
pc(pc_plugindir --variable=plugindir)
pc(abi_major --variable=abi_major)
pc(modversion --modversion)
if(NOT abi_major STREQUAL "1" OR NOT modversion MATCHES "^1\\.[0-9]+$")
  message(FATAL_ERROR "clusterd-sdk.pc: abi_major='${abi_major}' version='${modversion}'")
endif()
file(REAL_PATH "${pc_plugindir}" pc_plugindir)
file(REAL_PATH "${plugindir}" real_plugindir)
if(NOT pc_plugindir STREQUAL real_plugindir)
  message(FATAL_ERROR "clusterd-sdk.pc: plugindir=${pc_plugindir}, expected ${real_plugindir}")
endif()
if(NOT EXISTS "${version_script}")
  message(FATAL_ERROR "clusterd-sdk.pc: version_script ${version_script} does not exist")
endif()
separate_arguments(cflags UNIX_COMMAND "${cflags}")
set(cc_out "${WORK_DIR}/cc/clusterd-example_c.so")
file(MAKE_DIRECTORY "${WORK_DIR}/cc")
message(STATUS "building example_c with ${CC} and pkg-config")
run("${CC}" -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 -shared -fPIC -fvisibility=hidden ${cflags}
    "${EXAMPLES_DIR}/minimal-c/example_c.c"
    "-Wl,--version-script=${version_script}" -Wl,-z,defs -Wl,--exclude-libs,ALL
    -o "${cc_out}")
check_plugin("${cc_out}")

# 4. The plugins this build installed (the in-tree ones) follow the same rules.
file(GLOB installed "${plugindir}/clusterd-*.so")
foreach(so IN LISTS installed)
  check_plugin("${so}")
endforeach()

# 5. The staged daemon loads what was built out of tree, and its built-in plugins, with no
#    configuration beyond plugin_path: the install is self-contained.
function(describe dir plugin)
  set(config "${WORK_DIR}/describe-${plugin}.toml")
  file(WRITE "${config}" "[clusterd]\nplugin_path = [\"${dir}\"]\n")
  execute_process(COMMAND "${stage}/bin/clusterd" plugins describe ${plugin} -c "${config}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT out MATCHES "\n  nodes \\(list of strings, required" OR NOT out MATCHES "${dir}")
    message(FATAL_ERROR "clusterd plugins describe ${plugin} (plugin_path ${dir}) failed (${rc}):\n${out}${err}")
  endif()
endfunction()
describe("${WORK_DIR}/minimal-c" example_c)
describe("${WORK_DIR}/minimal-cpp" example_cpp)
describe("${WORK_DIR}/cc" example_c)
execute_process(COMMAND "${stage}/bin/clusterd" plugins list RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "strategy +epmd" OR NOT out MATCHES "transport +command")
  message(FATAL_ERROR "staged clusterd plugins list did not find its built-in plugins (${rc}):\n${out}${err}")
endif()
# 6. `clusterd check` applies the out-of-tree plugins' constraints and validate() (ABI 1.3):
#    each bad value is reported at its file:line:column, a good configuration passes.
function(expect_check name body rc_expected pattern)
  set(config "${WORK_DIR}/check-${name}.toml")
  file(WRITE "${config}" "[clusterd]\nplugin_path = [\"${WORK_DIR}/minimal-c\", \"${WORK_DIR}/minimal-cpp\"]\n"
                         "[transports.t]\nplugin = \"command\"\nconnect = [\"/bin/true\"]\n${body}")
  execute_process(COMMAND "${stage}/bin/clusterd" check -c "${config}"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(REPLACE "@CONFIG@" "${config}" pattern "${pattern}")
  if(NOT rc EQUAL rc_expected OR NOT "${out}${err}" MATCHES "${pattern}")
    message(FATAL_ERROR "clusterd check (${name}) exited ${rc}, expected ${rc_expected} and /${pattern}/:\n${out}${err}")
  endif()
  message(STATUS "ok: check ${name}")
endfunction()
set(c_topology "[topologies.c]\nstrategy = \"example_c\"\n[topologies.c.config]\n")
set(cpp_topology "[topologies.p]\nstrategy = \"example_cpp\"\n[topologies.p.config]\n")
expect_check(good "${c_topology}nodes = [\"a@h\", \"b@h\"]\nprimary = \"b@h\"\n${cpp_topology}nodes = [\"a@h\"]\n"
             0 ": OK \\(1 transport")
expect_check(c-constraint "${c_topology}nodes = [\"a@h\", \"foo\"]\n"
             1 "@CONFIG@:9:9: topologies\\.c\\.config\\.nodes: element #2 \"foo\" is not a node name")
expect_check(c-validate "${c_topology}nodes = [\"a@h\"]\nprimary = \"z@h\"\n"
             1 "@CONFIG@:10:11: topologies\\.c\\.config\\.primary: must be one of the nodes")
expect_check(cpp-constraint "${cpp_topology}nodes = [\"a@h\"]\ninterval = \"infinity\"\n"
             1 "@CONFIG@:10:12: topologies\\.p\\.config\\.interval: must be a finite duration")
expect_check(cpp-validate "${cpp_topology}nodes = [\"a@h\", \"a@h\"]\n"
             1 "@CONFIG@:9:9: topologies\\.p\\.config\\.nodes: lists a@h twice")

# 7. libclusterd-client: CMake, then plain cc with pkg-config. Each program runs: with no daemon
#    at the socket it must say so (exit 1), which proves it linked and started.
function(expect_no_daemon program)
  execute_process(COMMAND "${program}" "${WORK_DIR}/no-daemon.sock" overlay default n@h hi
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "cannot connect to clusterd at .*no-daemon.sock")
    message(FATAL_ERROR "${program} with no daemon exited ${rc}:\n${out}${err}")
  endif()
  message(STATUS "ok: ${program}")
endfunction()
set(bin "${WORK_DIR}/client-c")
if(SANITIZE)  # the staged library needs the sanitizer runtimes a plain link does not add
  message(STATUS "sdk_consumer: all checks passed (libclusterd-client not linked: sanitized build)")
  return()
endif()
run(${CMAKE_COMMAND} -S "${EXAMPLES_DIR}/client-c" -B "${bin}" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${stage}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_C_COMPILER=${C_COMPILER}" "-DCMAKE_C_FLAGS=${warn}")
run(${CMAKE_COMMAND} --build "${bin}" --config Release)
expect_no_daemon("${bin}/send_one")
execute_process(COMMAND ${pc_env} "${PKG_CONFIG}" --cflags --libs clusterd-client
                RESULT_VARIABLE rc OUTPUT_VARIABLE client_flags ERROR_VARIABLE err
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0 OR NOT client_flags MATCHES "-lclusterd-client")
  message(FATAL_ERROR "pkg-config --cflags --libs clusterd-client failed (${rc}): ${client_flags}${err}")
endif()
separate_arguments(client_flags UNIX_COMMAND "${client_flags}")
run("${CC}" -std=c11 -Wall -Wextra -Wpedantic -Werror -O2 "${EXAMPLES_DIR}/client-c/send_one.c"
    ${client_flags} -o "${WORK_DIR}/cc/send_one")
expect_no_daemon("${WORK_DIR}/cc/send_one")
message(STATUS "sdk_consumer: all checks passed")
