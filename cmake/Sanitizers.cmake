# CLUSTERD_SANITIZE=ON builds everything (host, plugins, tests) with ASan + UBSan, so a
# plugin's memory error is caught inside the daemon that loads it.
if(CLUSTERD_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
