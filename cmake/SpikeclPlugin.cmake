# spikecl_add_plugin(<name> SOURCES <file.c>... [KERNELS <file.cl>...])
#
# Builds a spikecl layer plugin: a MODULE library lib<name>.so that exports spk_plugin_init.
# Kernel files are single-source (see spikecl/kernel.h): the plugin's .c includes each k.cl as C
# (its folder is on the include path) for the CPU backend, and the generated header k_cl.h, which
# holds the file's text as `static const char k_cl_source[]`, for OpenCL.
#
# The plugin sees only the spikecl headers (target spikecl::headers), not libspikecl: it reaches
# the host through the spk_host_api table it is handed, which is what keeps it loadable by any
# spikecl with the same ABI major.
include_guard(GLOBAL)

function(spikecl_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;KERNELS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "spikecl_add_plugin(${name}): unexpected arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "spikecl_add_plugin(${name}): SOURCES is required")
  endif()
  set(embed "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed.cmake")
  add_library(${name} MODULE ${arg_SOURCES})
  # one folder per plugin, so two plugins may both have a kernels.cl
  set(kdir "${CMAKE_CURRENT_BINARY_DIR}/${name}_kernels")
  foreach(cl IN LISTS arg_KERNELS)
    get_filename_component(abs "${cl}" ABSOLUTE)
    get_filename_component(dir "${abs}" DIRECTORY)
    get_filename_component(base "${cl}" NAME_WE)
    set(out "${kdir}/${base}_cl.h")
    add_custom_command(
      OUTPUT "${out}"
      COMMAND "${CMAKE_COMMAND}" "-DIN=${abs}" "-DOUT=${out}" "-DVAR=${base}_cl_source" -P
              "${embed}"
      DEPENDS "${abs}" "${embed}"
      COMMENT "Embedding kernel ${base}.cl"
      VERBATIM)
    target_sources(${name} PRIVATE "${out}")
    target_include_directories(${name} PRIVATE "${dir}")
  endforeach()
  target_include_directories(${name} PRIVATE "${kdir}")
  target_link_libraries(${name} PRIVATE spikecl::headers m)
  # the kernels' CPU form runs its work items as an OpenMP loop
  if(TARGET OpenMP::OpenMP_C)
    target_link_libraries(${name} PRIVATE OpenMP::OpenMP_C)
  endif()
  # ISO C11 without extensions, like libspikecl: GCC then does not contract a*b+c into an FMA,
  # so the CPU kernels round like the OpenCL ones (built with FP_CONTRACT OFF)
  set_target_properties(${name} PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON
                                           C_EXTENSIONS OFF)
  # the kernels are the hot loop: without a build type CMake would compile them at -O0
  target_compile_options(${name} PRIVATE $<$<CONFIG:>:-O2>)
endfunction()
