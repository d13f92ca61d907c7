# uninstall.cmake -- what the `uninstall` target runs:
#   cmake -DINSTALLED=FILE -DCONFIG=PATH -DSHIPPED=PATH -P uninstall.cmake
# INSTALLED lists, one per line, every file `cmake --install` puts in place
# (written at configure time by mmapq_install() in CMakeLists.txt); each is
# removed, below $ENV{DESTDIR} as the install put it there.  CONFIG (the
# installed mmapq.ini) is removed only if it is still the same as SHIPPED
# (config/mmapq.ini): an edited one stays, and so do drop-ins (CONFIG.d/*),
# CONFIG.d and the configuration directory while anything is left in them.
foreach(v INSTALLED CONFIG SHIPPED)
  if(NOT ${v})
    message(FATAL_ERROR "uninstall.cmake: -D${v}= is missing")
  endif()
endforeach()
set(destdir "$ENV{DESTDIR}")
file(STRINGS "${INSTALLED}" files)
foreach(f ${files})
  if(EXISTS "${destdir}${f}" OR IS_SYMLINK "${destdir}${f}")
    message(STATUS "Removing: ${destdir}${f}")
    file(REMOVE "${destdir}${f}")
  endif()
endforeach()

set(ini "${destdir}${CONFIG}")
if(EXISTS "${ini}")
  file(SHA256 "${ini}" have)
  file(SHA256 "${SHIPPED}" shipped)
  if(have STREQUAL shipped)
    message(STATUS "Removing: ${ini} (as installed)")
    file(REMOVE "${ini}")
  else()
    message(STATUS "Keeping: ${ini} (edited; remove it by hand if it is no longer wanted)")
  endif()
endif()
# The drop-in directory (installed empty), then the configuration directory,
# each only if nothing is left in it (rmdir refuses otherwise).
get_filename_component(confdir "${ini}" DIRECTORY)
foreach(dir "${ini}.d" "${confdir}")
  if(IS_DIRECTORY "${dir}")
    execute_process(COMMAND rmdir "${dir}" RESULT_VARIABLE kept ERROR_QUIET)
    if(kept EQUAL 0)
      message(STATUS "Removing: ${dir}/ (empty)")
    else()
      message(STATUS "Keeping: ${dir}/ (not empty)")
    endif()
  endif()
endforeach()
