# CPack: one package, clusterd-plugin-consul, as .deb (cpack -G DEB) and .rpm (cpack -G RPM),
# lint-clean (lintian --fail-on error,warning; rpmlint -c packaging/rpmlint.toml). Configure
# with CMAKE_INSTALL_PREFIX=/usr against an SDK installed in /usr so that the plugin lands in the
# packaged daemon's directory, /usr/lib/<triplet>/clusterd/plugins.
set(_consul_pkg_dir ${CMAKE_CURRENT_LIST_DIR})
set(_consul_doc_dir ${CMAKE_INSTALL_DATADIR}/doc/${PROJECT_NAME})

# Debian wants copyright and changelog.Debian.gz (gzip -9n: reproducible) in the doc dir.
set(_consul_changelog ${CMAKE_CURRENT_BINARY_DIR}/changelog.Debian.gz)
add_custom_command(OUTPUT ${_consul_changelog}
                   COMMAND gzip -9nc ${_consul_pkg_dir}/changelog.Debian > ${_consul_changelog}
                   DEPENDS ${_consul_pkg_dir}/changelog.Debian VERBATIM)
add_custom_target(consul_pkgdocs ALL DEPENDS ${_consul_changelog})
install(FILES ${_consul_pkg_dir}/copyright ${_consul_changelog} DESTINATION ${_consul_doc_dir})
install(FILES ${_consul_pkg_dir}/../README.md DESTINATION ${_consul_doc_dir})

set(CPACK_PACKAGE_NAME ${PROJECT_NAME})
set(CPACK_PACKAGE_VENDOR "clusterd")
set(CPACK_PACKAGE_CONTACT "clusterd maintainers <maintainers@clusterd.example>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PACKAGE_RELOCATABLE OFF)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Consul discovery strategy for clusterd")
# CPack puts the summary first and indents these lines (Debian's extended description).
set(_consul_description
    "The clusterd strategy consul (libcluster_consul's Cluster.Strategy.Consul):"
    "the instances of a Consul service become nodes, from the Agent, Catalog"
    "or Health API, in one or several datacenters. Blocking queries bring a"
    "change within milliseconds. The ACL token may rotate, and the local node"
    "can register itself with a TTL check.")
list(JOIN _consul_description "\n" _consul_description)

# DEB
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/clusterd/clusterd")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "clusterd (>= 0.1.0)")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "${_consul_description}")

# RPM
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_RPM_PACKAGE_LICENSE "Apache-2.0")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_URL "https://github.com/clusterd/clusterd")
set(CPACK_RPM_PACKAGE_SUMMARY "${CPACK_PACKAGE_DESCRIPTION_SUMMARY}")
set(CPACK_RPM_PACKAGE_DESCRIPTION "${_consul_description}")
set(CPACK_RPM_PACKAGE_REQUIRES "clusterd")
set(CPACK_RPM_CHANGELOG_FILE ${_consul_pkg_dir}/changelog.rpm)
set(CPACK_RPM_SPEC_MORE_DEFINE "%define packager ${CPACK_PACKAGE_CONTACT}")
# Directories the system and the daemon's package own.
list(APPEND CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION ${CMAKE_INSTALL_FULL_LIBDIR}
     ${CMAKE_INSTALL_FULL_LIBDIR}/clusterd ${CMAKE_INSTALL_FULL_LIBDIR}/clusterd/plugins)

include(CPack)
