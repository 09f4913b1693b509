# `cmake --install BUILD [--prefix P]`: the weft CLI, the runtime library with its public
# headers, a CMake package (find_package(weft) -> weft::runtime) and a pkg-config file
# (weft-runtime.pc). Everything installed is relocatable: the prefix may be chosen at
# install time. The runtime's link interface is weft::ir, zlib, libpng, oneDNN and OpenMP: never MLIR/LLVM.
#
#   P/bin/weft
#   P/include/weft/{runtime,ir}/*.h        included as "runtime/npy.h", "ir/tensor_data.h"
#   P/LIBDIR/libweft_runtime.a, libweft_ir.a
#   P/LIBDIR/cmake/weft/weft{Config,ConfigVersion,Targets,Targets-<config>}.cmake
#   P/LIBDIR/pkgconfig/weft-runtime.pc
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(WEFT_INSTALL_INCLUDEDIR include/weft)  # matches the INSTALL_INTERFACE of ir/ and runtime/
set(WEFT_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/weft)
set(WEFT_INSTALL_PKGCONFIGDIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# --- the CLI ------------------------------------------------------------------------------
# OPTIONAL: a tree where only the runtime was built still installs. The CLI links shared
# libraries outside the default search path (LLVM/MLIR under /usr/lib/llvm-19/lib), so the
# installed binary keeps the directories it was linked against as its RPATH.
if(TARGET weft)
  set_target_properties(weft PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
  install(TARGETS weft RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli OPTIONAL)
endif()

# --- the runtime library and what it links ------------------------------------------------
set_target_properties(weft_runtime PROPERTIES EXPORT_NAME runtime)
set_target_properties(weft_ir PROPERTIES EXPORT_NAME ir)
install(TARGETS weft_runtime weft_ir EXPORT weftTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)

# Public headers: every runtime header, and the ir/ headers they include (plus ir/error.h
# for weft::Error, the exception every runtime function throws). The install test compiles
# all installed headers together, so a missing one fails there.
# runtime/cpu/ (the CPU runtime's steps) and runtime/bundle_model.h are internal: not installed.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/ DESTINATION ${WEFT_INSTALL_INCLUDEDIR}/runtime
        COMPONENT development FILES_MATCHING PATTERN "*.h" PATTERN "cpu" EXCLUDE PATTERN "bundle_model.h" EXCLUDE)
install(FILES ir/attrs.h ir/error.h ir/ops.def ir/ops.h ir/tensor_data.h ir/types.h
        DESTINATION ${WEFT_INSTALL_INCLUDEDIR}/ir COMPONENT development)

# --- CMake package ------------------------------------------------------------------------
install(EXPORT weftTargets NAMESPACE weft:: FILE weftTargets.cmake
        DESTINATION ${WEFT_INSTALL_CMAKEDIR} COMPONENT development)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/weftConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/weftConfig.cmake
                              INSTALL_DESTINATION ${WEFT_INSTALL_CMAKEDIR})
# 0.x: a new minor version may change the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/weftConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/weftConfig.cmake ${PROJECT_BINARY_DIR}/weftConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/WeftDependencies.cmake ${PROJECT_SOURCE_DIR}/cmake/WeftBundle.cmake
        DESTINATION ${WEFT_INSTALL_CMAKEDIR} COMPONENT development)

# --- pkg-config ---------------------------------------------------------------------------
# The prefix is found from the .pc file's own location (${pcfiledir}), so the file stays
# right whatever --prefix the install is given.
file(RELATIVE_PATH WEFT_PC_TO_PREFIX /prefix/${WEFT_INSTALL_PKGCONFIGDIR} /prefix)
configure_file(${PROJECT_SOURCE_DIR}/cmake/weft-runtime.pc.in ${PROJECT_BINARY_DIR}/weft-runtime.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/weft-runtime.pc DESTINATION ${WEFT_INSTALL_PKGCONFIGDIR}
        COMPONENT development)
