# Third-party libraries found once for the whole tree (imported targets stay visible in every
# folder) and again by an installed weft's package config (weftConfig.cmake includes this file).
#
# oneDNN. Debian's libdnnl-dev config (dnnl-config.cmake) insists on the OpenCL development
# files because the library is built with an OpenCL GPU runtime; the CPU runtime needs none
# of it, so without them DNNL::dnnl is imported from the library and headers directly.
if(NOT TARGET DNNL::dnnl)
  find_package(OpenCL QUIET)
  if(OpenCL_FOUND)
    find_package(dnnl REQUIRED)
  else()
    find_library(WEFT_DNNL_LIBRARY dnnl REQUIRED)
    find_path(WEFT_DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp REQUIRED)
    add_library(DNNL::dnnl UNKNOWN IMPORTED)
    set_target_properties(DNNL::dnnl PROPERTIES IMPORTED_LOCATION ${WEFT_DNNL_LIBRARY}
                                                INTERFACE_INCLUDE_DIRECTORIES ${WEFT_DNNL_INCLUDE_DIR})
  endif()
endif()
find_package(OpenMP REQUIRED COMPONENTS CXX)
