# Sourced by the build scripts: ccache_launcher holds the CMake options that route compiles
# through ccache when it is installed (empty otherwise). CCACHE_BASEDIR makes paths inside the
# source relative, so trees built with the same flags (the .deb's and the .rpm's) share hits.
ccache_launcher=()
if command -v ccache >/dev/null; then
  ccache_launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
fi
