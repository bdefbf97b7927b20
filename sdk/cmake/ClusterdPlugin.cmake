# clusterd_add_plugin(<name> SOURCES <files...> [LINK <libs...>] [NO_INSTALL] [COMPONENT <c>]
#                     [SHARED_CXX_RUNTIME])
#
# Builds the plugin <name> as clusterd-<name>.so, the way every clusterd plugin must be
# built: hidden visibility, one exported symbol (version script), no undefined symbols
# (-z defs), static libraries kept private (--exclude-libs). Used in-tree and out of tree
# (find_package(ClusterdSDK) includes this file).
#
# The C++ library (libstdc++) is linked statically and kept private, like the rest: only the
# C ABI crosses into the host. This keeps libstdc++.so (about 1.5 MB of resident memory) out
# of the daemon, and lets a plugin built with a newer compiler load into an older host. The
# unwinder (libgcc_s) stays shared, as GCC requires when exceptions cross shared objects: the
# host's last-resort catch of an exception that escapes a plugin against ABI rule 6 works.
# Avoid iostreams in plugins (clusterd::read_file reads files): they link the C++ locale
# machinery in. Unused sections and libraries are dropped (--gc-sections, --as-needed). SHARED_CXX_RUNTIME, or the
# variable CLUSTERD_PLUGIN_SHARED_CXX_RUNTIME (e.g. for sanitizer builds), links libstdc++
# dynamically.
#
# Output: ${CLUSTERD_PLUGIN_OUTPUT_DIR} when set (the clusterd tree sets it so built plugins
# sit where the built daemon looks), else the normal LIBRARY_OUTPUT_DIRECTORY.
# Install: to ${CLUSTERD_PLUGIN_INSTALL_DIR} (the ClusterdSDK package sets it to
# <prefix>/<libdir>/clusterd/plugins of the SDK's prefix), unless NO_INSTALL is given or the
# variable is unset. COMPONENT names the install component (default: CMake's default).
if(CMAKE_VERSION VERSION_LESS 3.17)  # CMAKE_CURRENT_FUNCTION_LIST_DIR
  message(FATAL_ERROR "clusterd_add_plugin needs CMake 3.17 or newer")
endif()

# For builds that link a plugin by hand (e.g. a deliberately unusual test library).
set(CLUSTERD_PLUGIN_VERSION_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/plugin.version")

function(clusterd_add_plugin name)
  cmake_parse_arguments(ARG "NO_INSTALL;SHARED_CXX_RUNTIME" "COMPONENT" "SOURCES;LINK" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "clusterd_add_plugin(${name}): SOURCES is required")
  endif()
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "clusterd_add_plugin(${name}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT name MATCHES "^[a-z0-9_]+$")
    message(FATAL_ERROR "clusterd_add_plugin(${name}): plugin names match [a-z0-9_]+")
  endif()
  if(NOT TARGET clusterd::sdk)
    message(FATAL_ERROR "clusterd_add_plugin(${name}): target clusterd::sdk is missing "
                        "(use find_package(ClusterdSDK))")
  endif()
  # The version script sits next to this file, in the source tree and in the installed package.
  set(version_script "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/plugin.version")

  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE clusterd::sdk ${ARG_LINK})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "clusterd-${name}"
    SUFFIX ".so"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS "${version_script}")
  if(DEFINED CLUSTERD_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${CLUSTERD_PLUGIN_OUTPUT_DIR}")
  endif()
  target_link_options(${name} PRIVATE
    "LINKER:--version-script=${version_script}"
    "LINKER:--exclude-libs,ALL" "LINKER:--gc-sections" "LINKER:--as-needed")
  if(NOT (ARG_SHARED_CXX_RUNTIME OR CLUSTERD_PLUGIN_SHARED_CXX_RUNTIME))
    target_link_options(${name} PRIVATE -static-libstdc++)
  endif()
  # -z defs catches a missing symbol at link time rather than at dlopen. Clang does not link
  # the sanitizer runtimes into shared objects, so sanitized Clang builds cannot use it.
  if(NOT (CLUSTERD_SANITIZE AND (CMAKE_C_COMPILER_ID MATCHES "Clang" OR CMAKE_CXX_COMPILER_ID MATCHES "Clang")))
    target_link_options(${name} PRIVATE "LINKER:-z,defs")
  endif()

  if(NOT ARG_NO_INSTALL AND DEFINED CLUSTERD_PLUGIN_INSTALL_DIR)
    if(ARG_COMPONENT)
      install(TARGETS ${name} LIBRARY DESTINATION "${CLUSTERD_PLUGIN_INSTALL_DIR}" COMPONENT ${ARG_COMPONENT})
    else()
      install(TARGETS ${name} LIBRARY DESTINATION "${CLUSTERD_PLUGIN_INSTALL_DIR}")
    endif()
  endif()
endfunction()
