# Strict warnings for clusterd's own targets (not for third-party headers).
function(clusterd_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror)
endfunction()
