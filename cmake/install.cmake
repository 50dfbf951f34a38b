# What `cmake --install` (or `make install`) puts under the prefix:
#   include/kite/*.h                  the public headers
#   lib/libkite.so.X.Y.Z, its SONAME link and libkite.so, lib/libkite.a
#   lib/pkgconfig/kite.pc             pkg-config (--static for libkite.a)
#   lib/cmake/kite/                   find_package(kite): kite::kite, kite::kite_static
#   bin/                              kited, kite-echo, kite-cli, kite-bench, kite-chaos, kite-token, kite-lobby
# Components: lib (the shared library), dev (the rest of the library),
# programs. docs/INSTALL.md has the details.
include(CMakePackageConfigHelpers)

set(kite_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/kite)
set(kite_targets kite)
if(KITE_SHARED)
  list(APPEND kite_targets kite_shared)
endif()
install(TARGETS ${kite_targets} EXPORT kiteTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev)
# cluster.h is libkite_cluster's, which is not installed yet (docs/CLUSTER.md).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/kite
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        FILES_MATCHING PATTERN "*.h" PATTERN "cluster.h" EXCLUDE)
install(EXPORT kiteTargets NAMESPACE kite:: DESTINATION ${kite_cmake_dir}
        COMPONENT dev)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kiteConfig.cmake.in
  ${PROJECT_BINARY_DIR}/kiteConfig.cmake INSTALL_DESTINATION ${kite_cmake_dir})
# 0.x: a new minor version may break the ABI and the API (as the SONAME says).
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(kite_compat SameMinorVersion)
else()
  set(kite_compat SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kiteConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY ${kite_compat})
install(FILES ${PROJECT_BINARY_DIR}/kiteConfig.cmake
              ${PROJECT_BINARY_DIR}/kiteConfigVersion.cmake
        DESTINATION ${kite_cmake_dir} COMPONENT dev)

# kite.pc names absolute directories, so it is written at install time,
# when the prefix is known (`cmake --install --prefix` may change it).
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(KITE_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(KITE_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
set(KITE_PC_PREFIX "@KITE_PC_PREFIX@") # kept for the install step
# libkite.so brings its own dependencies; libkite.a alone needs them named.
# wslay has no .pc on Debian: named as a library.
if(KITE_SHARED)
  set(KITE_PC_PRIVATE .private)
  set(KITE_PC_LIBS "")
  set(KITE_PC_LIBS_PRIVATE " -lwslay -pthread")
else()
  set(KITE_PC_PRIVATE "")
  set(KITE_PC_LIBS " -lwslay -pthread")
  set(KITE_PC_LIBS_PRIVATE "")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/kite.pc.in
               ${PROJECT_BINARY_DIR}/kite.pc.in @ONLY)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(kite_pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
else()
  set(kite_pc_dir "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()
install(CODE "
  set(KITE_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(kite_pc \"\$ENV{DESTDIR}${kite_pc_dir}/kite.pc\")
  message(STATUS \"Installing: \${kite_pc}\")
  configure_file(\"${PROJECT_BINARY_DIR}/kite.pc.in\" \"\${kite_pc}\" @ONLY)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${kite_pc}\")
" COMPONENT dev)

if(KITE_PROGRAMS AND NOT KITE_FUZZ) # a fuzz build has no programs
  install(TARGETS kited kite-echo kite-cli kite-bench kite-chaos kite-token kite-lobby
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT programs)
endif()

# One Debian package with all of the above, when kite is the top-level
# project (docs/INSTALL.md):
#   cmake -S . -B build/deb -DCMAKE_INSTALL_PREFIX=/usr -DKITE_TESTS=OFF -DKITE_BENCH=OFF
#   cmake --build build/deb && (cd build/deb && cpack -G DEB)
if(kite_top_level)
  set(CPACK_PACKAGE_NAME kite)
  set(CPACK_PACKAGE_VENDOR kite)
  set(CPACK_PACKAGE_CONTACT "kite maintainers <kite@localhost>")
  set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
      "real-time game server framework: KCP over UDP and TCP (library, headers, tools)")
  set(CPACK_GENERATOR DEB)
  # The install step runs with CMAKE_INSTALL_PREFIX as configured and the
  # staging directory as DESTDIR, so kite.pc names the prefix, not the stage.
  set(CPACK_SET_DESTDIR ON)
  set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  # kite.pc and kiteConfig.cmake name libsodium, zlib, nettle and wslay
  # for static links.
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libsodium-dev, zlib1g-dev, nettle-dev, libwslay-dev")
  set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
  include(CPack)
endif()
