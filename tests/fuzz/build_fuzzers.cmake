# cmake -DSOURCE_DIR=<checkout> -DBINARY_DIR=<dir> -DGENERATOR=<gen> -DJOBS=<n> -P build_fuzzers.cmake
#
# Configures and builds the clang sub-build (targets/) in BINARY_DIR and
# makes the directories the runs write to. Fails, saying what to install,
# when clang or its fuzzer runtime is missing: a machine that cannot fuzz
# must not pass the fuzz tests.
foreach(v SOURCE_DIR BINARY_DIR GENERATOR JOBS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "build_fuzzers.cmake: -D${v}=... is required")
  endif()
endforeach()

set(install_hint "install the Debian packages clang-14 and libclang-rt-14-dev (listed in deploy/debian-packages.txt; ./flurry build installs them)")
find_program(clang NAMES clang++-14 NO_CACHE)
if(NOT clang)
  message(FATAL_ERROR "fuzz: clang++-14 not found: ${install_hint}")
endif()
execute_process(COMMAND ${clang} --print-runtime-dir OUTPUT_VARIABLE runtime_dir OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT EXISTS "${runtime_dir}/libclang_rt.fuzzer-x86_64.a" AND NOT EXISTS "${runtime_dir}/libclang_rt.fuzzer.a")
  message(FATAL_ERROR "fuzz: clang's libFuzzer runtime is missing from '${runtime_dir}': ${install_hint}")
endif()

execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/fuzz/targets -B ${BINARY_DIR} -G ${GENERATOR}
          -DCMAKE_CXX_COMPILER=${clang} -DFLURRY_SOURCE_DIR=${SOURCE_DIR}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzz: configuring the clang build in ${BINARY_DIR} failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} -j ${JOBS} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fuzz: building the fuzz targets in ${BINARY_DIR} failed")
endif()
# A corpus directory for every target built (targets/CMakeLists.txt names them).
file(GLOB fuzzers RELATIVE ${BINARY_DIR} ${BINARY_DIR}/fuzz_*)
foreach(fuzzer ${fuzzers})
  string(REGEX REPLACE "^fuzz_" "" name ${fuzzer})
  file(MAKE_DIRECTORY ${BINARY_DIR}/corpus/${name})
endforeach()
file(MAKE_DIRECTORY ${BINARY_DIR}/artifacts)
