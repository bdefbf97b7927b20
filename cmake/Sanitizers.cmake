# CLUSTERD_SANITIZE=ON builds everything (host, plugins, tests) with ASan + UBSan, so a
# plugin's memory error is caught inside the daemon that loads it.
if(CLUSTERD_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# The daemon links libstdc++ statically (about 1.5 MB less resident memory; see
# sdk/cmake/ClusterdPlugin.cmake for the plugins' side and why the unwinder stays shared).
# Sanitizer builds keep the shared library, which the sanitizer runtimes expect.
set(CLUSTERD_PLUGIN_SHARED_CXX_RUNTIME ${CLUSTERD_SANITIZE})
function(clusterd_static_cxx_runtime target)
  if(NOT CLUSTERD_SANITIZE)
    target_link_options(${target} PRIVATE -static-libstdc++)
  endif()
endfunction()
