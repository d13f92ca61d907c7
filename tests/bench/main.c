/* SPDX-License-Identifier: MIT */
/*
 * mmapq_bench -- mmapq against pipes, AF_UNIX sockets, POSIX message queues,
 * ZeroMQ, a per-record mutex+condvar ring and a lock-free SPSC ring, in one run;
 * with --e2e the daemons end to end against the same job over a pipe, and
 * their memory with a full backlog; with --idle an idle daemon pair; with
 * --fanout 1, 2 and 4 named consumers on one queue, and idle; with
 * --fanin 1, 2 and 4 writers into one queue, against POSIX mq and one
 * socket to mmapq-producer; with
 * --e2e-lines lines of 64 B and 1 KiB through the daemons against
 * cat | cat; with
 * --format3 the throughput job on file format 3 (libmmapq 1 from git
 * history); with --space and --corpus the changelogs of this machine:
 * the queue bytes they need (format 4 against format 3), end to end;
 * with --durability the daemons with each sync mode; with --peers the
 * same inputs over POSIX mq, Redis Streams and NATS JetStream.
 *
 * Every measurement is two processes (fork) pinned to two different CPUs
 * (unpinned, and said so, if only one is available).  Each section also
 * reports the CPU time other processes used meanwhile (and the hypervisor
 * stole): numbers from a busy machine say so.  What each row is and how
 * records are verified: README-bench.md; the parts of the program:
 * bench.h.
 *
 * This file: the options, the CPUs, and the order of the sections.
 */
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "mmapq.h"
#include "testutil.h"

struct opts opt = {
	.tput = true, .lat = true, .runs = 3, .seconds = 0.5,
	.batch = 64, .big_batch = 1024, .spsc_batch = 64, .ring_kib = 4096, .spin_us = 50,
	.e2e_count = 10000000, .lines64_count = 2000000, .lines1k_count = 131072, .e2e_size = 0, .e2e_max_record = 0, .e2e_big_size = UINT64_C(16) << 20,
	.backlog_records = 16777216,
	.idle_seconds = 10, .only_mask = ~0u, .size_mask = ~0u,
	.f3_runs = 7, .corpus_lines = 0,
	.dur_lines = 1000000, .dur_ints = 2000000, .dur_always_div = 100,
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: mmapq_bench [OPTION]...\n"
	        "Throughput and latency of mmapq against pipes, AF_UNIX sockets, POSIX message queues,\n"
	        "ZeroMQ, a per-record mutex+condvar ring and a lock-free SPSC ring, in one run.\n\n"
	        "  --quick            correctness smoke: tiny counts, 1 run (no meaningful timings)\n"
	        "  --json             JSON on stdout instead of the tables\n"
	        "  --e2e              also the end-to-end daemon job against a pipe job\n"
	        "  --e2e-lines        also lines end to end: 64-byte and 1 KiB lines from a file through\n"
	        "                     the daemons (format line, output file) against cat | cat and a\n"
	        "                     line pipe job\n"
	        "  --lines64-count N  its 64-byte lines (default 2000000, --quick 20000)\n"
	        "  --lines1k-count N  its 1 KiB lines (default 131072, --quick 2000)\n"
	        "  --idle             also the CPU use of an idle daemon pair\n"
	        "  --fanout           also fan-out: 1, 2 and 4 named consumers on one queue (64 B),\n"
	        "                     and the CPU use of the idle daemons, producer and 4 consumers\n"
	        "  --fanin            also fan-in: 1, 2 and 4 writers into one queue (64 B), over\n"
	        "                     mmapq, POSIX mq and one AF_UNIX socket to mmapq-producer\n"
	        "  --format3          also the format-3 peer: the throughput job (int records, line\n"
	        "                     records of each size, batched) on libmmapq 1 built from git\n"
	        "                     history, against this libmmapq, taking turns\n"
	        "  --format3-runs N   its rounds (default 7: a verdict needs 7 of 7)\n"
	        "  --format3-rev REV  its commit (default: the parent of the one that made mmapq.h\n"
	        "                     say MMAPQ_FILE_VERSION 4)\n"
	        "  --space            also the space rows: the queue bytes the changelogs of this\n"
	        "                     machine need, format 4 (a queue filled) against format 3\n"
	        "                     (computed)\n"
	        "  --corpus           also those changelogs end to end: the daemons (format line,\n"
	        "                     output file) against cat | cat\n"
	        "  --corpus-lines N   the first N lines of each corpus only (default all, --quick\n"
	        "                     20000)\n"
	        "  --durability       also the daemons end to end to a file with sync = never,\n"
	        "                     batch, interval and always, and the disk's own bound\n"
	        "  --dur-lines N      its 64-byte lines (default 1000000, --quick 20000)\n"
	        "  --dur-ints N       its integers (default 2000000, --quick 40000)\n"
	        "  --dur-always-div N sync = always carries 1/N of each (default 100, --quick 20)\n"
	        "  --peers            also (with --durability's inputs and rounds, which it turns\n"
	        "                     on) POSIX mq, Redis Streams (no persistence, AOF everysec,\n"
	        "                     AOF always) and NATS JetStream (file store) end to end,\n"
	        "                     against the daemons\n"
	        "  --no-throughput    skip the throughput table\n"
	        "  --no-latency       skip the latency table\n"
	        "  --runs N           runs per cell, median reported (default 3)\n"
	        "  --seconds S        length of one throughput run (default 0.5)\n"
	        "  --batch N          records per publish/release, mmapq (default 64)\n"
	        "  --big-batch N      the same, for the 'big batches' mmapq row (default 1024)\n"
	        "  --spsc-batch N     records per index publication, spsc ring (default 64)\n"
	        "  --ring-kib N       ring KiB of mmapq/textbook/spsc (default 4096; at least 64\n"
	        "                     records of each size)\n"
	        "  --spin-us N        spin_us of the 'mmapq, spin' latency row (default 50)\n"
	        "  --only LIST        transports, comma-separated: mmapq,mmapq_big,textbook,spsc,pipe,\n"
	        "                     unix,stdio4k,stdio64k,mq,zmq\n"
	        "  --sizes LIST       record sizes, comma-separated, of 8,64,1024,16384\n"
	        "  --e2e-count N      integers in the end-to-end job (default 10000000)\n"
	        "  --e2e-size B       the daemons' [queue] size in bytes, K, M or G (default: as\n"
	        "                     shipped, not set)\n"
	        "  --e2e-max-record B the daemons' [queue] max_record (default: as shipped, not set)\n"
	        "  --e2e-big-size B   the 'big ring' daemons' size (default 16M; max_record 8)\n"
	        "  --backlog-records N  int records of the full-backlog memory job, a power of two:\n"
	        "                     its ring is N x 16 bytes (--e2e; default 16777216, --quick 4096)\n"
	        "  --idle-seconds S   idle measurement (default 10)\n"
	        "  --nice N           run at this nice value (e.g. -20 as root: other processes\n"
	        "                     on the machine then disturb the measurement less)\n"
	        "  --bin-dir DIR      where mmapq-producer and mmapq-consumer are (default\n"
	        "                     $MMAPQ_BIN_DIR, else daemons-rel/ beside this program: the\n"
	        "                     the released daemons of the build, no fault points)\n"
	        "  --plot DIR         also write the main tables as charts into DIR: gnuplot data,\n"
	        "                     a script (mmapq_bench.gp) and SVG and PNG images rendered\n"
	        "                     with it (throughput, mmapq / strongest peer, latency,\n"
	        "                     end to end)\n"
	        "Exit status: 0 all verified, 1 a record failed verification or a transport failed\n"
	        "(or gnuplot failed on the charts of --plot), 64 usage error.\n");
}

static uint32_t parse_list(const char *s, bool transports)
{
	uint32_t mask = 0;
	char *dup = strdup(s), *save = NULL;
	for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool found = false;
		if (transports) {
			for (int t = 0; t < NTRANSPORTS; t++)
				if (!strcmp(tok, tdefs[t].key)) {
					mask |= 1u << t;
					found = true;
				}
		} else {
			for (int si = 0; si < NSIZES; si++)
				if (strtoul(tok, NULL, 10) == sizes[si]) {
					mask |= 1u << si;
					found = true;
				}
		}
		if (!found) {
			fprintf(stderr, "mmapq_bench: unknown %s '%s'\n", transports ? "transport" : "size", tok);
			exit(EXIT_USAGE_);
		}
	}
	free(dup);
	return mask;
}

static void find_cpus(void)
{
	cpu_set_t set;
	FILE *f;
	char line[256];

	ncpus_online = (int)sysconf(_SC_NPROCESSORS_ONLN);
	f = fopen("/proc/cpuinfo", "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (!strncmp(line, "model name", 10)) {
				char *p = strchr(line, ':');
				if (p) {
					p += 1 + (p[1] == ' ');
					p[strcspn(p, "\n")] = '\0';
					snprintf(cpu_model, sizeof(cpu_model), "%s", p);
				}
				break;
			}
		}
		fclose(f);
	}
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set)) {
				if (cpu_a < 0)
					cpu_a = i;
				else if (cpu_b < 0)
					cpu_b = i;
			}
	}
	if (cpu_b < 0) {
		note("only one CPU available: running UNPINNED, producer and consumer share it");
		cpu_a = -1;
	}
}

static char *default_bin_dir(void)
{
	char exe[PATH_MAX], *slash, *d;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return strdup(".");
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	if (asprintf(&d, "%s/daemons-rel", exe) < 0)
		return strdup(".");
	return d;
}

/* Which defaults of --quick an option given overrides. */
static bool runs_set, e2e_count_set, idle_secs_set, ring_set, backlog_set,
	corpus_lines_set, dur_lines_set, dur_ints_set, dur_div_set, lines64_set, lines1k_set;

enum opt_kind {
	OPT_ON, OPT_OFF, OPT_INT, OPT_U32, OPT_U64, OPT_BYTES, OPT_DOUBLE, OPT_STR, OPT_TRANSPORTS,
	OPT_SIZES
};

struct opt_def {
	const char *name;
	enum opt_kind kind;
	void *val;
	bool *set; /* made true when given (or NULL) */
};

static const struct opt_def opt_defs[] = {
	{"--quick", OPT_ON, &opt.quick, NULL},
	{"--json", OPT_ON, &opt.json, NULL},
	{"--e2e", OPT_ON, &opt.e2e, NULL},
	{"--e2e-lines", OPT_ON, &opt.e2e_lines, NULL},
	{"--lines64-count", OPT_U64, &opt.lines64_count, &lines64_set},
	{"--lines1k-count", OPT_U64, &opt.lines1k_count, &lines1k_set},
	{"--idle", OPT_ON, &opt.idle, NULL},
	{"--fanout", OPT_ON, &opt.fanout, NULL},
	{"--fanin", OPT_ON, &opt.fanin, NULL},
	{"--format3", OPT_ON, &opt.format3, NULL},
	{"--format3-runs", OPT_INT, &opt.f3_runs, NULL},
	{"--format3-rev", OPT_STR, &opt.f3_rev, NULL},
	{"--space", OPT_ON, &opt.space, NULL},
	{"--corpus", OPT_ON, &opt.corpus, NULL},
	{"--corpus-lines", OPT_U64, &opt.corpus_lines, &corpus_lines_set},
	{"--durability", OPT_ON, &opt.durability, NULL},
	{"--peers", OPT_ON, &opt.peers, NULL},
	{"--dur-lines", OPT_U64, &opt.dur_lines, &dur_lines_set},
	{"--dur-ints", OPT_U64, &opt.dur_ints, &dur_ints_set},
	{"--dur-always-div", OPT_U64, &opt.dur_always_div, &dur_div_set},
	{"--no-throughput", OPT_OFF, &opt.tput, NULL},
	{"--no-latency", OPT_OFF, &opt.lat, NULL},
	{"--runs", OPT_INT, &opt.runs, &runs_set},
	{"--seconds", OPT_DOUBLE, &opt.seconds, NULL},
	{"--batch", OPT_U32, &opt.batch, NULL},
	{"--big-batch", OPT_U32, &opt.big_batch, NULL},
	{"--spsc-batch", OPT_U32, &opt.spsc_batch, NULL},
	{"--ring-kib", OPT_U32, &opt.ring_kib, &ring_set},
	{"--spin-us", OPT_U32, &opt.spin_us, NULL},
	{"--only", OPT_TRANSPORTS, &opt.only_mask, NULL},
	{"--sizes", OPT_SIZES, &opt.size_mask, NULL},
	{"--e2e-count", OPT_U64, &opt.e2e_count, &e2e_count_set},
	{"--e2e-size", OPT_BYTES, &opt.e2e_size, NULL},
	{"--e2e-max-record", OPT_BYTES, &opt.e2e_max_record, NULL},
	{"--e2e-big-size", OPT_BYTES, &opt.e2e_big_size, NULL},
	{"--backlog-records", OPT_U64, &opt.backlog_records, &backlog_set},
	{"--idle-seconds", OPT_DOUBLE, &opt.idle_seconds, &idle_secs_set},
	{"--nice", OPT_INT, &opt.nice, &opt.nice_set},
	{"--bin-dir", OPT_STR, &opt.bin_dir, NULL},
	{"--plot", OPT_STR, &opt.plot_dir, NULL},
};

/* argv[*i] is d->name; its value, if it takes one, is argv[*i + 1].
 * 0, or EXIT_USAGE_. */
static int set_option(const struct opt_def *d, int argc, char **argv, int *i)
{
	const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;

	if (d->kind == OPT_ON || d->kind == OPT_OFF) {
		*(bool *)d->val = d->kind == OPT_ON;
		return 0;
	}
	if (!v) {
		fprintf(stderr, "mmapq_bench: %s needs a value\n", d->name);
		return EXIT_USAGE_;
	}
	++*i;
	switch (d->kind) {
	case OPT_INT:
		*(int *)d->val = atoi(v);
		break;
	case OPT_U32:
		*(uint32_t *)d->val = (uint32_t)strtoul(v, NULL, 10);
		break;
	case OPT_U64:
		*(uint64_t *)d->val = strtoull(v, NULL, 10);
		break;
	case OPT_BYTES: {
		/* as mmapq.ini writes them: digits, then K, M or G if you like */
		char *end;
		uint64_t n = strtoull(v, &end, 10);
		const char *units = "KMG", *u = *end ? strchr(units, *end) : NULL;

		if (end == v || (*end && (!u || end[1]))) {
			fprintf(stderr, "mmapq_bench: %s: '%s' is not a number of bytes\n", d->name, v);
			return EXIT_USAGE_;
		}
		*(uint64_t *)d->val = u ? n << (10 * (u - units + 1)) : n;
		break;
	}
	case OPT_DOUBLE:
		*(double *)d->val = atof(v);
		break;
	case OPT_STR:
		*(const char **)d->val = v;
		break;
	default:
		*(uint32_t *)d->val = parse_list(v, d->kind == OPT_TRANSPORTS);
		break;
	}
	if (d->set)
		*d->set = true;
	return 0;
}

/* 0, or the exit status: 0 after --help, EXIT_USAGE_. */
static int parse_options(int argc, char **argv, bool *help)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t k = 0;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			*help = true;
			return 0;
		}
		while (k < sizeof(opt_defs) / sizeof(opt_defs[0]) && strcmp(a, opt_defs[k].name))
			k++;
		if (k == sizeof(opt_defs) / sizeof(opt_defs[0])) {
			fprintf(stderr, "mmapq_bench: unknown option '%s'\n", a);
			usage(stderr);
			return EXIT_USAGE_;
		}
		if (set_option(&opt_defs[k], argc, argv, &i))
			return EXIT_USAGE_;
	}
	if (opt.peers) /* its inputs, its rounds and the daemons it is compared with */
		opt.durability = true;
	if (opt.quick) {
		if (!runs_set)
			opt.runs = 1;
		if (!e2e_count_set)
			opt.e2e_count = 200000;
		if (!backlog_set)
			opt.backlog_records = 4096;
		if (!idle_secs_set)
			opt.idle_seconds = 1;
		if (!ring_set)
			opt.ring_kib = 64; /* so that the few records of the smoke wrap every ring */
		if (!corpus_lines_set)
			opt.corpus_lines = 20000;
		if (!dur_lines_set)
			opt.dur_lines = 20000;
		if (!dur_ints_set)
			opt.dur_ints = 40000;
		if (!dur_div_set)
			opt.dur_always_div = 20;
		if (!lines64_set)
			opt.lines64_count = 20000;
		if (!lines1k_set)
			opt.lines1k_count = 2000;
	}
	if (opt.runs < 1 || opt.runs > MAX_RUNS || opt.seconds <= 0 || opt.batch < 1 || opt.big_batch < 1 ||
	    opt.spsc_batch < 1 || opt.ring_kib < 1 || opt.ring_kib > 4194304 || opt.e2e_count < 1 ||
	    opt.idle_seconds <= 0 || (opt.e2e_size && !mmapq_file_size(opt.e2e_size)) ||
	    !mmapq_file_size(opt.e2e_big_size) || opt.backlog_records > MMAPQ_SIZE_MAX / 16 ||
	    !mmapq_file_size(opt.backlog_records * 16) ||
	    (opt.e2e_max_record && (opt.e2e_max_record < MMAPQ_MAX_RECORD_MIN ||
	                            opt.e2e_max_record > MMAPQ_MAX_RECORD_MAX)) ||
	    opt.f3_runs < 1 || opt.f3_runs > MAX_RUNS ||
	    opt.dur_lines < 1 || opt.dur_ints < 1 || opt.dur_always_div < 1 || opt.lines64_count < 1 ||
	    opt.lines1k_count < 1) {
		fprintf(stderr, "mmapq_bench: --runs 1..%d; --seconds, --batch, --e2e-count and --idle-seconds"
		        " positive; --ring-kib 1..4194304; --e2e-size 0 (as shipped) or a ring size (a power of"
		        " two, 64..64G), --e2e-big-size one; --e2e-max-record 0 (as shipped) or 8..64M;"
		        " --backlog-records a power of two, 4..4294967296; --format3-runs 1..%d;"
		        " --dur-lines, --dur-ints, --dur-always-div, --lines64-count and --lines1k-count"
		        " positive\n", MAX_RUNS, MAX_RUNS);
		return EXIT_USAGE_;
	}
	return 0;
}

int main(int argc, char **argv)
{
	bool help = false;
	int r;

	/* Big buffers always come from mmap and go back at free(): glibc would
	 * otherwise raise its threshold after the first free and keep them in
	 * the heap.  A child's peak RSS (ru_maxrss, --e2e) starts at the
	 * benchmark's own resident set at fork, even across exec: it is kept
	 * small. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);

	r = parse_options(argc, argv, &help);
	if (r || help)
		return r;
	find_cpus();
	if (opt.nice_set && setpriority(PRIO_PROCESS, 0, opt.nice) < 0) {
		note("--nice %d: %s (running at the default priority)", opt.nice, strerror(errno));
		opt.nice_set = false;
	}
	page_reporting_off();
	if ((opt.tput && (opt.only_mask & (1u << T_MQ))) || opt.peers || opt.fanin)
		mq_limits_raise();
	else
		mq_limits_read();
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED) {
		note("mmap: %s", strerror(errno));
		return EXIT_FAIL;
	}
	tmpdir = tu_mkdtemp("bench");
	bin_dir = opt.bin_dir ? strdup(opt.bin_dir) :
	          getenv("MMAPQ_BIN_DIR") && *getenv("MMAPQ_BIN_DIR") ? strdup(getenv("MMAPQ_BIN_DIR")) :
	          default_bin_dir();
	if (opt.e2e || opt.e2e_lines || opt.idle || opt.fanout || opt.fanin || opt.corpus || opt.durability) {
		char *p = tu_path(bin_dir, "mmapq-producer"), *c = tu_path(bin_dir, "mmapq-consumer");
		if (access(p, X_OK) || access(c, X_OK)) {
			note("%s or %s not found: give --bin-dir or MMAPQ_BIN_DIR", p, c);
			tu_rmdir_r(tmpdir);
			return EXIT_USAGE_;
		}
		free(p);
		free(c);
	}
	signal(SIGPIPE, SIG_IGN);

	if (opt.tput)
		run_throughput();
	if (opt.format3)
		run_format3();
	if (opt.lat)
		run_latency();
	if (opt.fanout)
		run_fanout();
	if (opt.fanin)
		run_fanin();
	if (opt.e2e) {
		struct load_mark m;
		load_mark(&m);
		run_e2e();
		load_section_end("end to end", &m);
		load_mark(&m);
		run_backlog();
		load_section_end("backlog", &m);
		load_mark(&m);
		if (!failed)
			run_codec();
		load_section_end("alone", &m);
	}
	if (opt.e2e_lines)
		run_e2e_lines();
	if (opt.space)
		run_space();
	if (opt.corpus)
		run_corpus_e2e();
	if (opt.durability)
		run_durability();
	if (opt.idle) {
		struct load_mark m;
		load_mark(&m);
		run_idle();
		load_section_end("idle", &m);
	}
	if (opt.fanout) {
		struct load_mark m;
		load_mark(&m);
		run_fanout_idle();
		load_section_end("fan-out idle", &m);
	}
	if (opt.tput)
		tput_check_all_ran();
	eval_targets();
	if (opt.plot_dir && !write_plot(opt.plot_dir))
		failed = true;
	if (opt.json)
		print_json();
	else
		print_tables();
	e2e_free();
	corpus_free();
	lines_free();
	dur_free();
	free(bin_dir);
	tu_rmdir_r(tmpdir);
	free(tmpdir);
	return failed ? EXIT_FAIL : 0;
}
