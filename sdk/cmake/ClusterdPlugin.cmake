# clusterd_add_plugin(<name> SOURCES <files...> [LINK <libs...>])
#
# Builds the plugin <name> as clusterd-<name>.so, the way every clusterd plugin must be
# built: hidden visibility, one exported symbol (version script), no undefined symbols
# (-z defs), static libraries kept private (--exclude-libs). Used in-tree and out of tree.
get_filename_component(_clusterd_plugin_cmake_dir "${CMAKE_CURRENT_LIST_FILE}" DIRECTORY)
set(CLUSTERD_PLUGIN_VERSION_SCRIPT "${_clusterd_plugin_cmake_dir}/plugin.version"
    CACHE INTERNAL "version script of clusterd plugins")

function(clusterd_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LINK" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "clusterd_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE clusterd::sdk ${ARG_LINK})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "clusterd-${name}"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    LINK_DEPENDS "${CLUSTERD_PLUGIN_VERSION_SCRIPT}")
  if(DEFINED CLUSTERD_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${CLUSTERD_PLUGIN_OUTPUT_DIR}")
  endif()
  target_link_options(${name} PRIVATE
    "LINKER:--version-script=${CLUSTERD_PLUGIN_VERSION_SCRIPT}"
    "LINKER:-z,defs" "LINKER:--exclude-libs,ALL")
endfunction()
