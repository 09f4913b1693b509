# weft_add_bundle(TARGET MODEL model [NAME name] [TRAIN] [OPTIONS args...])
#
# Compiles MODEL (a registered model name or a .weft file) into an ahead-of-time bundle at
# build time, with the weft CLI of this package (WEFT_EXECUTABLE):
#   weft compile MODEL --aot -o <binary dir>/TARGET [--train] --name NAME OPTIONS...
# and makes TARGET a static library of the bundle's object that carries its header's include
# directory and the runtime, so a program only does
#   target_link_libraries(app PRIVATE TARGET)
# and includes "NAME.h". NAME defaults to TARGET. The weights file is
# <binary dir>/TARGET/NAME.safetensors (the target property WEFT_BUNDLE_WEIGHTS).
function(weft_add_bundle target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "TRAIN" "MODEL;NAME" "OPTIONS")
  if(NOT arg_MODEL)
    message(FATAL_ERROR "weft_add_bundle(${target}): MODEL is required")
  endif()
  if(NOT WEFT_EXECUTABLE OR NOT EXISTS "${WEFT_EXECUTABLE}")
    message(FATAL_ERROR "weft_add_bundle(${target}): the weft CLI was not found (WEFT_EXECUTABLE='${WEFT_EXECUTABLE}')")
  endif()
  if(NOT arg_NAME)
    set(arg_NAME ${target})
  endif()
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${target})
  set(files ${dir}/${arg_NAME}.o ${dir}/${arg_NAME}.h ${dir}/${arg_NAME}.safetensors ${dir}/${arg_NAME}.md)
  set(command ${WEFT_EXECUTABLE} compile ${arg_MODEL} --aot -o ${dir} --name ${arg_NAME})
  if(arg_TRAIN)
    list(APPEND command --train)
  endif()
  set(depends ${WEFT_EXECUTABLE})
  if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/${arg_MODEL}")
    list(APPEND depends ${CMAKE_CURRENT_SOURCE_DIR}/${arg_MODEL})
  endif()
  add_custom_command(OUTPUT ${files}
                     COMMAND ${command} ${arg_OPTIONS}
                     DEPENDS ${depends}
                     COMMENT "weft: bundle ${arg_NAME} from ${arg_MODEL}"
                     VERBATIM)
  add_library(${target} STATIC ${dir}/${arg_NAME}.o ${dir}/${arg_NAME}.h)
  # An archive of one object: any enabled language can create it.
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  list(FIND languages C has_c)
  if(has_c GREATER_EQUAL 0)
    set(language C)
  else()
    set(language CXX)
  endif()
  set_target_properties(${target} PROPERTIES LINKER_LANGUAGE ${language}
                                             WEFT_BUNDLE_WEIGHTS ${dir}/${arg_NAME}.safetensors)
  target_include_directories(${target} PUBLIC ${dir})
  # The kernels may call libm (f64 tanh, erf).
  target_link_libraries(${target} PUBLIC weft::runtime m)
endfunction()
