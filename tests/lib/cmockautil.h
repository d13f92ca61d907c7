/* SPDX-License-Identifier: MIT */
/*
 * cmockautil.h -- the main of the cmocka test programs, so that a skip is
 * reported as a skip.  cmocka's own run counts a test that called skip() as
 * not failed and the program exits 0, as if the test had run and passed;
 * here every skip() is noted (the programs are linked with
 * -Wl,--wrap=_skip, see cmockautil.c) and the program exits 77 instead:
 *
 *   prog                     every test
 *   prog NAME                test NAME alone
 *   prog --except NAME ...   every test but these
 *
 * Exit 1 if a test failed, else 77 if one skipped, else 0; 64 for a NAME
 * that is no test's.  A test says why on stderr before it calls skip()
 * (cmocka says only that it did).  A test that may skip (it needs root, another user, a
 * device...) gets a ctest entry of its own, PROGRAM.NAME, and is left out
 * of PROGRAM's (mmapq_add_test ... CMOCKA SEPARATE NAME in
 * tests/CMakeLists.txt), so that its skip does not hide the others' passes.
 */
#ifndef MMAPQ_CMOCKAUTIL_H
#define MMAPQ_CMOCKAUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

int tu_cmocka_main(int argc, char **argv, const struct CMUnitTest *tests, size_t n,
                   CMFixtureFunction group_setup, CMFixtureFunction group_teardown);
#define tu_cmocka_run(argc, argv, tests, group_setup, group_teardown)                    \
	tu_cmocka_main((argc), (argv), (tests), sizeof(tests) / sizeof((tests)[0]), (group_setup), \
	               (group_teardown))

#endif
