/* SPDX-License-Identifier: MIT */
#include "cmockautil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static unsigned g_skipped;

/* Every skip() of a test goes here first: the programs are linked with
 * -Wl,--wrap=_skip (tests/CMakeLists.txt), which sends the references to
 * cmocka's _skip in their objects to __wrap__skip; __real__skip is cmocka's
 * own, which ends the test as skipped. */
void __wrap__skip(const char *file, int line);
void __real__skip(const char *file, int line);
void __wrap__skip(const char *file, int line)
{
	g_skipped++;
	__real__skip(file, line);
}

static const struct CMUnitTest *find(const struct CMUnitTest *tests, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(tests[i].name, name))
			return &tests[i];
	return NULL;
}

int tu_cmocka_main(int argc, char **argv, const struct CMUnitTest *tests, size_t n,
                   CMFixtureFunction group_setup, CMFixtureFunction group_teardown)
{
	struct CMUnitTest *run = calloc(n ? n : 1, sizeof(*run));
	const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	bool except = argc > 1 && !strcmp(argv[1], "--except");
	size_t k = 0;
	int failed;

	if (!run)
		tu_die("calloc");
	for (int i = except ? 2 : 1; i < argc; i++)
		if (!find(tests, n, argv[i])) {
			fprintf(stderr, "%s: no test '%s'\n", prog, argv[i]);
			free(run);
			return 64;
		}
	if (argc == 2 && !except) {
		run[k++] = *find(tests, n, argv[1]);
	} else if (argc == 1 || except) {
		for (size_t i = 0; i < n; i++) {
			bool left_out = false;

			for (int j = 2; except && j < argc; j++)
				left_out |= !strcmp(tests[i].name, argv[j]);
			if (!left_out)
				run[k++] = tests[i];
		}
	} else {
		fprintf(stderr, "usage: %s [NAME | --except NAME...]\n", prog);
		free(run);
		return 64;
	}
	failed = _cmocka_run_group_tests(prog, run, k, group_setup, group_teardown);
	free(run);
	if (failed)
		return 1;
	if (g_skipped) {
		fprintf(stderr, "%s: SKIP: %u test(s) skipped (each says why above)\n", prog, g_skipped);
		return TEST_SKIP;
	}
	return 0;
}
