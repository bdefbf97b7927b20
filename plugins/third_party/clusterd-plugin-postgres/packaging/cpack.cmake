# CPack: one package, clusterd-plugin-postgres, as .deb (cpack -G DEB) and .rpm (cpack -G RPM),
# lint-clean (lintian --fail-on error,warning; rpmlint -c packaging/rpmlint.toml). Configure
# with CMAKE_INSTALL_PREFIX=/usr against an SDK installed in /usr so that the plugin lands in the
# packaged daemon's directory, /usr/lib/<triplet>/clusterd/plugins.
set(_pg_pkg_dir ${CMAKE_CURRENT_LIST_DIR})
set(_pg_doc_dir ${CMAKE_INSTALL_DATADIR}/doc/${PROJECT_NAME})

# Debian wants copyright and changelog.Debian.gz (gzip -9n: reproducible) in the doc dir.
set(_pg_changelog ${CMAKE_CURRENT_BINARY_DIR}/changelog.Debian.gz)
add_custom_command(OUTPUT ${_pg_changelog}
                   COMMAND gzip -9nc ${_pg_pkg_dir}/changelog.Debian > ${_pg_changelog}
                   DEPENDS ${_pg_pkg_dir}/changelog.Debian VERBATIM)
add_custom_target(postgres_pkgdocs ALL DEPENDS ${_pg_changelog})
install(FILES ${_pg_pkg_dir}/copyright ${_pg_changelog} DESTINATION ${_pg_doc_dir})
install(FILES ${_pg_pkg_dir}/../README.md DESTINATION ${_pg_doc_dir})

set(CPACK_PACKAGE_NAME ${PROJECT_NAME})
set(CPACK_PACKAGE_VENDOR "clusterd")
set(CPACK_PACKAGE_CONTACT "clusterd maintainers <maintainers@clusterd.example>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PACKAGE_RELOCATABLE OFF)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "PostgreSQL LISTEN/NOTIFY discovery strategy for clusterd")
# CPack puts the summary first and indents these lines (Debian's extended description).
set(_pg_description
    "The clusterd strategy postgres (libcluster_postgres's"
    "LibclusterPostgres.Strategy): nodes announce their names with NOTIFY on"
    "a PostgreSQL channel and listen on it, so clusterd-managed nodes and"
    "Elixir nodes running libcluster_postgres find each other. Nodes not"
    "heard for a while are reported lost; lost connections are retried.")
list(JOIN _pg_description "\n" _pg_description)

# DEB
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/clusterd/clusterd")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # libpq5, libc6, libgcc-s1
set(CPACK_DEBIAN_PACKAGE_DEPENDS "clusterd (>= 0.1.0)")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "${_pg_description}")

# RPM
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE 1)
set(CPACK_RPM_PACKAGE_LICENSE "Apache-2.0")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_URL "https://github.com/clusterd/clusterd")
set(CPACK_RPM_PACKAGE_SUMMARY "${CPACK_PACKAGE_DESCRIPTION_SUMMARY}")
set(CPACK_RPM_PACKAGE_DESCRIPTION "${_pg_description}")
set(CPACK_RPM_PACKAGE_REQUIRES "clusterd")
set(CPACK_RPM_CHANGELOG_FILE ${_pg_pkg_dir}/changelog.rpm)
set(CPACK_RPM_SPEC_MORE_DEFINE "%define packager ${CPACK_PACKAGE_CONTACT}")
# Directories the system and the daemon's package own.
list(APPEND CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION ${CMAKE_INSTALL_FULL_LIBDIR}
     ${CMAKE_INSTALL_FULL_LIBDIR}/clusterd ${CMAKE_INSTALL_FULL_LIBDIR}/clusterd/plugins)

include(CPack)
