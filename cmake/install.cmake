# `cmake --install` puts the binaries, the worker API's headers, its static
# libraries and a CMake package in place, so a user's project can do
#   find_package(herd REQUIRED)
#   target_link_libraries(app PRIVATE herd::worker)
include(CMakePackageConfigHelpers)

set_target_properties(herd_common PROPERTIES EXPORT_NAME common)
set_target_properties(herd_proto PROPERTIES EXPORT_NAME proto)

install(TARGETS herd herd-worker herdctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS herd_worker herd_proto herd_common
  EXPORT herdTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/worker/include/herd
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(HERD_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/herd)
install(EXPORT herdTargets NAMESPACE herd:: DESTINATION ${HERD_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/herdConfig.cmake.in
  ${CMAKE_BINARY_DIR}/herdConfig.cmake
  INSTALL_DESTINATION ${HERD_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/herdConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/herdConfig.cmake ${CMAKE_BINARY_DIR}/herdConfigVersion.cmake
  DESTINATION ${HERD_CMAKE_DIR})
