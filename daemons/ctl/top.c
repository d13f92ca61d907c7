/* SPDX-License-Identifier: MIT */
/*
 * top.c -- `mmapqctl top`: a live view of one queue, refreshed in place
 * every interval (geometry, the clean mark and the last salvage, depth in
 * records and bytes, rates, whether the producer waits for room and for
 * which consumer, every consumer's lag and rate, who is attached), fitting
 * an 80x24 terminal; q, Ctrl-C or Ctrl-D end it.
 */
#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "blocked.h"
#include "exit.h"
#include "log.h"
#include "service.h"

static void since(char *buf, size_t size, uint64_t usec)
{
	time_t t = (time_t)(usec / 1000000u);
	struct tm tm;

	if (!usec || !localtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, size, "-");
}

static void side_line(const char *name, const struct mmapq_side_status *s)
{
	char when[32];

	since(when, sizeof(when), s->start_usec);
	/* "\033[K": clear to the end of the line, whatever was there */
	printf("%-9s %8" PRId32 "  %-8s %-19s %10" PRIu64 " %8" PRIu64 "\033[K\n", name, s->pid,
	       s->attached ? "yes" : "no", when, s->recoveries, s->attaches);
}

/* The registered consumers of a frame (mmapq_consumers). */
struct consumers {
	struct mmapq_consumer_status c[MMAPQ_CONSUMERS_MAX];
	int n;
};

/* Rows for consumers: the frame has 17 other lines, 24 in all. */
#define TOP_CONSUMER_ROWS 7

/* One line per consumer (its rate from the previous frame's position of
 * the same name), as many as fit; then how many more there are. */
static void consumer_lines(const struct consumers *cs, const struct consumers *prev, double secs)
{
	int shown = cs->n <= TOP_CONSUMER_ROWS ? cs->n : TOP_CONSUMER_ROWS - 1;

	printf("%-16s %8s  %-8s %12s %10s %10s %6s\033[K\n", "consumer", "pid", "attached", "lag",
	       "lag bytes", "per second", "recov.");
	for (int i = 0; i < shown; i++) {
		const struct mmapq_consumer_status *c = &cs->c[i];
		char rate[16] = "-", bytes[16];

		for (int j = 0; prev && secs > 0 && j < prev->n; j++)
			if (!strcmp(prev->c[j].name, c->name) && c->position >= prev->c[j].position)
				format_per_second(rate, sizeof(rate), (double)(c->position - prev->c[j].position) / secs);
		printf("%-16.16s %8" PRId32 "  %-8s %12" PRIu64 " %10s %10s %6" PRIu64 "\033[K\n", c->name,
		       c->pid, c->attached ? "yes" : "no", c->lag,
		       human_bytes(bytes, sizeof(bytes), c->lag_bytes), rate, c->recoveries);
	}
	if (shown < cs->n)
		printf("... %d more (mmapqctl consumers)\033[K\n", cs->n - shown);
	if (!cs->n)
		printf("(none registered)\033[K\n");
}

/* The geometry line. */
static void geometry_line(const struct mmapq_status *st)
{
	char size[16], rec[16], file[16];

	human_bytes(file, sizeof(file), st->file_size);
	if (st->version != MMAPQ_FILE_VERSION) {
		printf("format %s, version %" PRIu32 " (read only), %" PRIu32 " slots of %" PRIu32
		       " bytes, file %s\033[K\n", mmapq_format_name(st->format), st->version, st->capacity,
		       st->slot_size, file);
		return;
	}
	printf("format %s, version %" PRIu32 ", size %s, max_record %s, file %s\033[K\n",
	       mmapq_format_name(st->format), st->version, human_bytes(size, sizeof(size), st->size),
	       human_bytes(rec, sizeof(rec), st->max_record), file);
}

/* The clean mark and the last salvage, cut to the 80 columns. */
static void state_line(const struct mmapq_status *st, const struct consumers *cs)
{
	bool attached = st->producer.attached;
	char line[160], when[32], bytes[16];
	int n;

	for (int i = 0; i < cs->n; i++)
		attached = attached || cs->c[i].attached;
	if (st->version != MMAPQ_FILE_VERSION) {
		printf("mmapqctl recreate carries it over into a version-%" PRIu32 " file\033[K\n",
		       MMAPQ_FILE_VERSION);
		return;
	}
	n = snprintf(line, sizeof(line), "%s; ", st->clean ? "clean" : attached ? "in use" :
	             "not clean (mmapqctl repair)");
	since(when, sizeof(when), st->salvage.usec);
	if (!st->salvage.count)
		snprintf(line + n, sizeof(line) - (size_t)n, "no salvage");
	else
		snprintf(line + n, sizeof(line) - (size_t)n, "salvages %" PRIu64 ", the last %s dropped %"
		         PRIu64 " (%s)", st->salvage.count, when, salvage_dropped(&st->salvage),
		         human_bytes(bytes, sizeof(bytes), st->salvage.dropped_bytes));
	printf("%.80s\033[K\n", line);
}

/* The producer's wait for room: since when and for which consumer, or
 * how long it waited in all; cut to the 80 columns. */
static void blocked_line(const struct blocked_info *b)
{
	char line[160], when[32];
	uint64_t now = wall_usec();

	if (b->since_usec)
		snprintf(line, sizeof(line), "%-10s waiting for room since %s (%.0f s) for %s%s%s", "blocked",
		         blocked_clock(when, sizeof(when), b->since_usec),
		         now > b->since_usec ? (double)(now - b->since_usec) / 1e6 : 0.0,
		         b->have_holder ? "consumer " : "a consumer to register",
		         b->have_holder ? b->holder.name : "",
		         !b->have_holder ? "" : b->holder.attached ? " (attached)" : " (not attached)");
	else
		snprintf(line, sizeof(line), "%-10s no; waited %.1f s for room in all", "blocked",
		         (double)b->total_usec / 1e6);
	printf("%.80s\033[K\n", line);
}

/* One frame, drawn over the previous one from the top left corner. */
static void frame(const char *path, const struct mmapq_status *st, const struct mmapq_status *prev,
                  const struct consumers *cs, const struct consumers *cprev, double secs,
                  const struct blocked_info *b)
{
	char clock[16], pr[16], cr[16], bar[41], used[16];
	uint64_t depth = st->tail - st->head;
	time_t now = time(NULL);
	struct tm tm;
	unsigned fill = st->size ? (unsigned)(st->used_bytes * 40 / st->size) : 0;

	if (!localtime_r(&now, &tm) || !strftime(clock, sizeof(clock), "%H:%M:%S", &tm))
		clock[0] = '\0';
	memset(bar, '#', fill);
	memset(bar + fill, '.', 40 - fill);
	bar[40] = '\0';
	if (prev && secs > 0) {
		format_per_second(pr, sizeof(pr), (double)(st->tail - prev->tail) / secs);
		format_per_second(cr, sizeof(cr), (double)(st->head - prev->head) / secs);
	} else {
		strcpy(pr, "-");
		strcpy(cr, "-");
	}
	fputs("\033[H", stdout);
	printf("mmapq top  %-.56s  %s\033[K\n", path, clock);
	geometry_line(st);
	state_line(st, cs);
	printf("\033[K\n");
	printf("%-10s %20s %12s\033[K\n", "", "records", "per second");
	printf("%-10s %20" PRIu64 " %12s\033[K\n", "published", st->tail, pr);
	printf("%-10s %20" PRIu64 " %12s\033[K\n", "consumed", st->head, cr);
	printf("%-10s %20" PRIu64 "   %s of %" PRIu64 " bytes (%.1f%%)\033[K\n", "depth", depth,
	       human_bytes(used, sizeof(used), st->used_bytes), st->size, used_percent(st));
	printf("%-10s [%s]\033[K\n", "", bar);
	printf("%-10s %20" PRIu64 "   bad input %" PRIu64 "\033[K\n", "dropped", st->producer.dropped,
	       st->producer.bad_input);
	blocked_line(b);
	printf("%-9s %8s  %-8s %-19s %10s %8s\033[K\n", "role", "pid", "attached", "since", "recoveries",
	       "attaches");
	side_line("producer", &st->producer);
	printf("\033[K\n");
	consumer_lines(cs, prev ? cprev : NULL, secs);
	printf("\033[K\n");
	printf("q: quit\033[K\033[J");
	fflush(stdout);
}

/* Until the next frame is due: true if the user asked to quit (q, Ctrl-C,
 * Ctrl-D, end of input). */
static bool wait_key(int ms, bool keys, bool (*stop)(void))
{
	struct pollfd pf = {.fd = STDIN_FILENO, .events = POLLIN};
	char c;
	int r;

	if (stop())
		return true;
	r = poll(&pf, keys ? 1 : 0, ms);
	if (r <= 0)
		return stop(); /* the interval passed, or a signal (Ctrl-C: SIGINT) */
	if (read(STDIN_FILENO, &c, 1) != 1)
		return true; /* end of input */
	return c == 'q' || c == 'Q' || c == 3 || c == 4;
}

int top_run(const struct mmapq_params *observer, unsigned interval_ms, bool (*stop)(void))
{
	bool tty = isatty(STDOUT_FILENO), keys = isatty(STDIN_FILENO);
	struct mmapq_status st = {0}, prev = {0};
	static struct consumers cs, cprev;
	struct blocked_info bl = {0};
	struct termios saved, raw;
	struct mmapq_error err;
	struct mmapq *q = NULL;
	uint64_t t_prev = 0;
	bool have_prev = false;
	int code = EXIT_OK;

	if (!tty) {
		log_error("top: standard output is not a terminal (mmapqctl status is for scripts)");
		return EXIT_USAGE;
	}
	if (keys && tcgetattr(STDIN_FILENO, &saved) == 0) {
		/* keys without Enter, no echo; Ctrl-C still sends SIGINT */
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	} else {
		keys = false;
	}
	fputs("\033[?25l\033[H\033[2J", stdout); /* hide the cursor, clear */
	for (;;) {
		uint64_t now = mmapq_now_ns();
		int r;

		/* a file replaced under us (recreate): look at the new one */
		if (q && mmapq_check(q) == -ESTALE) {
			mmapq_close(q);
			q = NULL;
			have_prev = false;
		}
		r = q ? 0 : mmapq_open(observer, &q, &err);
		if (r == 0)
			r = mmapq_status(q, &st);
		if (r == 0 && (r = mmapq_consumers(q, cs.c, MMAPQ_CONSUMERS_MAX)) >= 0) {
			cs.n = r < (int)MMAPQ_CONSUMERS_MAX ? r : (int)MMAPQ_CONSUMERS_MAX;
			r = 0;
		}
		if (r == 0)
			r = blocked_read(q, &bl);
		if (r < 0) {
			fputs("\033[H\033[2J", stdout);
			log_error("%s", q ? mmapq_strerror(r) : err.msg);
			code = exit_code_for_open(r);
			break;
		}
		frame(mmapq_path(q), &st, have_prev ? &prev : NULL, &cs, &cprev,
		      (double)(now - t_prev) / 1e9, &bl);
		prev = st;
		cprev = cs;
		t_prev = now;
		have_prev = true;
		if (wait_key((int)interval_ms, keys, stop))
			break;
	}
	fputs("\033[?25h\n", stdout); /* the cursor back */
	if (keys)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	fflush(stdout);
	mmapq_close(q);
	return code;
}
