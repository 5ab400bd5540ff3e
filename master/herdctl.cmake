# herdctl, the operator CLI; include()d from master/CMakeLists.txt.
# Its pure half (requests, reply formatting, the top view's layout) is a
# library so the unit tests link it.
add_library(herd_herdctl_format STATIC
  ${CMAKE_CURRENT_LIST_DIR}/herdctl_format.cpp
  ${CMAKE_CURRENT_LIST_DIR}/herdctl_top.cpp
)
target_include_directories(herd_herdctl_format PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(herd_herdctl_format
  PUBLIC nlohmann_json::nlohmann_json
  PRIVATE herd_warnings)

add_executable(herdctl
  ${CMAKE_CURRENT_LIST_DIR}/herdctl_main.cpp
  ${CMAKE_CURRENT_LIST_DIR}/herdctl_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/herdctl_terminal.cpp
  ${CMAKE_CURRENT_LIST_DIR}/herdctl_top_shell.cpp
)
target_link_libraries(herdctl PRIVATE
  herd_herdctl_format herd_common CLI11::CLI11 nlohmann_json::nlohmann_json herd_warnings)
