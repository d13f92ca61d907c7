/* SPDX-License-Identifier: MIT */
/*
 * top.c -- `mmapqctl top`: a live view of one queue, refreshed in place
 * every interval (geometry, the clean mark and the last salvage, depth in
 * records and bytes, rates, whether the producer waits for room and for
 * which consumer, every producer's published count and wait, every
 * consumer's lag and rate, who is attached), fitting
 * an 80x24 terminal; on a smaller one each line is cut at the width and the
 * frame at the height, so that nothing wraps or scrolls.  q, Ctrl-C or
 * Ctrl-D end it.  The terminal is taken over only once the queue could be
 * read, and given back before an error is said.
 */
#include "ctl.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
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

/* The terminal's size (read again for every frame: it may change), and
 * the lines of the frame drawn so far. */
static struct {
	int cols, rows, line;
} scr;

/* One line of the frame, cut at the terminal's width: a line that wrapped
 * would push the rest of the frame down and off the screen.  Lines past
 * the terminal's height are left out (the screen would scroll).  Each line
 * but the first starts with the newline that ends the one before, so that
 * the last row is never followed by one. */
static void put_line(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	size_t n = 0;
	int col = 0;

	if (scr.line >= scr.rows)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* a column per character: the bytes that do not continue one */
	for (; buf[n]; n++) {
		if (((unsigned char)buf[n] & 0xc0) == 0x80)
			continue;
		if (col == scr.cols)
			break;
		col++;
	}
	if (scr.line++)
		putchar('\n');
	fwrite(buf, 1, n, stdout);
	/* clear what an earlier frame left to the right; a line as wide as
	 * the terminal has nothing there, and the cursor waits past its last
	 * column, where erasing would take that column */
	if (col < scr.cols)
		fputs("\033[K", stdout);
}

/* The registered consumers and producers of a frame (mmapq_consumers,
 * mmapq_producers). */
struct consumers {
	struct mmapq_consumer_status c[MMAPQ_CONSUMERS_MAX];
	int n;
	struct mmapq_producer_status p[MMAPQ_PRODUCERS_MAX];
	int np;
};

/* Rows for producers and consumers together: the frame has 16 other
 * lines, 24 in all.  Producers take up to TOP_PRODUCER_ROWS of them (one
 * if none is registered), the consumers the rest. */
#define TOP_ROLE_ROWS 8
#define TOP_PRODUCER_ROWS 3

static int producer_rows(const struct consumers *cs)
{
	return cs->np == 0 ? 1 : cs->np <= TOP_PRODUCER_ROWS ? cs->np : TOP_PRODUCER_ROWS;
}

/* One line per producer, as many as fit; then how many more there are.
 * Its pid is the last one's (attached or not); wait: whether it waits for
 * room now. */
static void producer_lines(const struct consumers *cs)
{
	int rows = producer_rows(cs), shown = cs->np <= rows ? cs->np : rows - 1;

	put_line("%-12s %8s  %-37s %12s %4s", "producer", "pid", "attached", "published", "wait");
	for (int i = 0; i < shown; i++) {
		const struct mmapq_producer_status *p = &cs->p[i];
		char when[32], attached[64];

		since(when, sizeof(when), p->start_usec);
		if (p->attached)
			snprintf(attached, sizeof(attached), "yes, since %s", when);
		else if (p->start_usec)
			snprintf(attached, sizeof(attached), "no, last attached %s", when);
		else
			snprintf(attached, sizeof(attached), "no, never attached");
		put_line("%-12.12s %8" PRId32 "  %-37s %12" PRIu64 " %4s", p->name, p->last_pid, attached,
		         p->published, p->blocked_since_usec ? "yes" : "no");
	}
	if (shown < cs->np)
		put_line("... %d more (mmapqctl status)", cs->np - shown);
	if (!cs->np)
		put_line("(none registered)");
}

/* One line per consumer, as many as fit; then how many more there are.
 * The rate is the one `mmapqctl consumers` prints: since it attached. */
static void consumer_lines(const struct consumers *cs)
{
	int rows = TOP_ROLE_ROWS - producer_rows(cs);
	int shown = cs->n <= rows ? cs->n : rows - 1;

	put_line("%-16s %8s  %-8s %12s %10s %11s %6s", "consumer", "pid", "attached", "lag",
	         "lag bytes", "rate/s", "recov.");
	for (int i = 0; i < shown; i++) {
		const struct mmapq_consumer_status *c = &cs->c[i];
		char rate[32], bytes[16];

		put_line("%-16.16s %8" PRId32 "  %-8s %12" PRIu64 " %10s %11s %6" PRIu64, c->name, c->pid,
		         c->attached ? "yes" : "no", c->lag, human_bytes(bytes, sizeof(bytes), c->lag_bytes),
		         consumer_rate_text(rate, sizeof(rate), c), c->recoveries);
	}
	if (shown < cs->n)
		put_line("... %d more (mmapqctl consumers)", cs->n - shown);
	if (!cs->n)
		put_line("(none registered)");
}

/* The geometry line. */
static void geometry_line(const struct mmapq_status *st)
{
	char size[16], rec[16], file[16];

	human_bytes(file, sizeof(file), st->file_size);
	if (st->version != MMAPQ_FILE_VERSION) {
		put_line("format %s, version %" PRIu32 " (read only), %" PRIu32 " slots of %" PRIu32
		         " bytes, file %s", mmapq_format_name(st->format), st->version, st->capacity,
		         st->slot_size, file);
		return;
	}
	put_line("format %s, version %" PRIu32 ", size %s, max_record %s, file %s",
	         mmapq_format_name(st->format), st->version, human_bytes(size, sizeof(size), st->size),
	         human_bytes(rec, sizeof(rec), st->max_record), file);
}

/* The clean mark and the last salvage. */
static void state_line(const struct mmapq_status *st, const struct consumers *cs)
{
	bool attached = st->producer.attached;
	char line[160], when[32], bytes[16];
	int n;

	for (int i = 0; i < cs->n; i++)
		attached = attached || cs->c[i].attached;
	for (int i = 0; i < cs->np; i++)
		attached = attached || cs->p[i].attached;
	if (st->version != MMAPQ_FILE_VERSION) {
		put_line("mmapqctl recreate carries it over into a version-%" PRIu32 " file",
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
	put_line("%s", line);
}

/* The terminal's size, 80x24 if it does not say. */
static void screen_size(void)
{
	struct winsize ws;

	scr.cols = 80;
	scr.rows = 24;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row) {
		scr.cols = ws.ws_col;
		scr.rows = ws.ws_row;
	}
}

/* The producer's wait for room: since when and for which consumer, or
 * how long it waited in all. */
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
	put_line("%s", line);
}

/* One frame, drawn over the previous one from the top left corner. */
static void frame(const char *path, const struct mmapq_status *st, const struct mmapq_status *prev,
                  const struct consumers *cs, double secs, const struct blocked_info *b)
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
	screen_size();
	scr.line = 0;
	fputs("\033[H", stdout);
	put_line("mmapq top  %-.56s  %s", path, clock);
	geometry_line(st);
	state_line(st, cs);
	put_line("");
	put_line("%-10s %20s %12s", "", "records", "per second");
	put_line("%-10s %20" PRIu64 " %12s", "published", st->tail, pr);
	put_line("%-10s %20" PRIu64 " %12s", "consumed", st->head, cr);
	put_line("%-10s %20" PRIu64 "   %s of %" PRIu64 " bytes (%.1f%%)", "depth", depth,
	         human_bytes(used, sizeof(used), st->used_bytes), st->size, used_percent(st));
	put_line("%-10s [%s]", "", bar);
	put_line("%-10s %20" PRIu64 "   bad input %" PRIu64, "dropped", st->producer.dropped,
	         st->producer.bad_input);
	blocked_line(b);
	producer_lines(cs);
	put_line("");
	consumer_lines(cs);
	put_line("");
	put_line("q: quit");
	/* what an earlier, longer frame left below: from the next line down
	 * (a frame of the terminal's full height has nothing below) */
	if (scr.line < scr.rows)
		fputs("\n\033[J", stdout);
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

/* The terminal as top draws on it: keys without Enter and without echo
 * (Ctrl-C still sends SIGINT), the cursor hidden, the screen cleared. */
static bool take_terminal(bool keys, struct termios *saved)
{
	struct termios raw;

	if (keys && tcgetattr(STDIN_FILENO, saved) == 0) {
		raw = *saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	} else {
		keys = false;
	}
	fputs("\033[?25l\033[H\033[2J", stdout);
	return keys;
}

/* The terminal as it was: the cursor shown below the last frame, the
 * keys as before. */
static void give_terminal(bool keys, const struct termios *saved)
{
	if (scr.line >= scr.rows)
		putchar('\n'); /* the frame filled the screen: a line of its own */
	fputs("\033[?25h", stdout);
	fflush(stdout);
	if (keys)
		tcsetattr(STDIN_FILENO, TCSANOW, saved);
}

int top_run(const struct mmapq_params *observer, unsigned interval_ms, bool (*stop)(void))
{
	bool tty = isatty(STDOUT_FILENO), keys = isatty(STDIN_FILENO), drawing = false;
	struct mmapq_status st = {0}, prev = {0};
	static struct consumers cs;
	struct blocked_info bl = {0};
	struct termios saved;
	struct mmapq_error err;
	struct mmapq *q = NULL;
	char why[sizeof(err.msg) + 64] = "";
	uint64_t t_prev = 0;
	bool have_prev = false;
	int code = EXIT_OK;

	if (!tty) {
		log_error("top: standard output is not a terminal (mmapqctl status is for scripts)");
		return EXIT_USAGE;
	}
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
		if (r < 0)
			snprintf(why, sizeof(why), "%s", err.msg);
		else if ((r = mmapq_status(q, &st)) == 0 &&
		         (r = cs.n = mmapq_consumers(q, cs.c, MMAPQ_CONSUMERS_MAX)) >= 0 &&
		         (r = cs.np = mmapq_producers(q, cs.p, MMAPQ_PRODUCERS_MAX)) >= 0) {
			cs.n = cs.n < (int)MMAPQ_CONSUMERS_MAX ? cs.n : (int)MMAPQ_CONSUMERS_MAX;
			cs.np = cs.np < (int)MMAPQ_PRODUCERS_MAX ? cs.np : (int)MMAPQ_PRODUCERS_MAX;
			r = 0;
		} else {
			snprintf(why, sizeof(why), "%s: %s", mmapq_path(q), mmapq_strerror(r));
		}
		if (r == 0 && (r = blocked_read(q, &bl)) < 0)
			snprintf(why, sizeof(why), "%s: %s", mmapq_path(q), mmapq_strerror(r));
		if (r < 0) {
			code = exit_code_for_open(r);
			break;
		}
		if (!drawing)
			keys = take_terminal(keys, &saved);
		drawing = true;
		frame(mmapq_path(q), &st, have_prev ? &prev : NULL, &cs, (double)(now - t_prev) / 1e9, &bl);
		prev = st;
		t_prev = now;
		have_prev = true;
		if (wait_key((int)interval_ms, keys, stop))
			break;
	}
	/* the terminal back before anything is said, below the last frame */
	if (drawing)
		give_terminal(keys, &saved);
	if (code != EXIT_OK)
		log_error("%s", why);
	mmapq_close(q);
	return code;
}
