/* SPDX-License-Identifier: MIT */
/*
 * durability.c -- durable modes at speed (--durability): the daemons end
 * to end, output file:, with each [queue] sync mode in one run: never,
 * batch, interval (sync_interval 10 ms) and always; each mode's
 * records/s over never's.
 *
 * Two inputs: --dur-lines lines of 64 bytes (1,000,000; format line) and
 * --dur-ints integers (2,000,000, random magnitudes as the end-to-end
 * job's; format int).  The queue as shipped (size, max_record not set).
 * always syncs every record (the producer's frame and header, the
 * consumer's output and cursor), a few disk round trips per record: it
 * carries the first 1/--dur-always-div of each input (1/100), and its rate
 * is compared.  Every output file is compared with its input.  The modes
 * and inputs take turns, --runs times.
 *
 * The disk, a peer row for each input: the bytes a durable run of the
 * whole input must at least write (every record's frame in the queue file,
 * and the output file) written as dd would, 1 MiB write()s into a new file
 * on the same file system, then one fdatasync; its "records/s" is the
 * input's records over that time.  And one 4 KiB write + fdatasync's time
 * (64 of them), the round trip that always pays per sync.
 *
 * Every row is also a ratio to sync = never round by round (the two ran
 * minutes apart at most); the median of those ratios and their range.
 *
 * With --peers, each round also moves the two inputs over what a user
 * would run instead of the daemons (peers.c), after the daemons.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench.h"
#include "mmapq.h"
#include "testutil.h"

#define DISK_BLOCK (1u << 20)
#define DISK_SYNCS 64

const char *const dur_mode_key[NDMODES] = {"never", "batch", "interval", "always", "disk"};
const char *const dur_in_key[NDINPUTS] = {"lines", "ints"};
struct dur_result dur[NDINPUTS][NDMODES];
struct dur_input dur_input[NDINPUTS][2];
uint64_t dur_bytes[NDINPUTS];
struct disk_result disk;

/* bytes (the frames and the output of input in) written to a new file in
 * 1 MiB writes, then fdatasync: seconds, or < 0. */
static double disk_write(uint64_t bytes)
{
	char *path = tu_path(tmpdir, "disk.bin"), *buf = xalloc(DISK_BLOCK);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	double secs = -1;
	uint64_t t0 = now_ns();

	memset(buf, 0x5a, DISK_BLOCK);
	if (fd < 0)
		goto out;
	for (uint64_t off = 0; off < bytes; off += DISK_BLOCK)
		if (tu_write_all(fd, buf, bytes - off < DISK_BLOCK ? bytes - off : DISK_BLOCK) < 0)
			goto out;
	if (fdatasync(fd) < 0)
		goto out;
	secs = (double)(now_ns() - t0) / 1e9;
out:
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(path);
	free(buf);
	return secs;
}

/* One 4 KiB write + fdatasync: seconds (the mean of DISK_SYNCS), or < 0. */
static double disk_sync_once(void)
{
	char *path = tu_path(tmpdir, "disk-sync.bin"), buf[4096];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	double secs = -1;
	uint64_t t0 = now_ns();

	memset(buf, 0x5a, sizeof(buf));
	for (int i = 0; fd >= 0 && i < DISK_SYNCS; i++)
		if (pwrite(fd, buf, sizeof(buf), (off_t)i * 4096) != 4096 || fdatasync(fd) < 0)
			goto out;
	if (fd >= 0)
		secs = (double)(now_ns() - t0) / 1e9 / DISK_SYNCS;
out:
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(path);
	return secs;
}

static bool make_inputs(void)
{
	for (int in = 0; in < NDINPUTS; in++)
		for (int always = 0; always < 2; always++) {
			uint64_t n = in == DIN_LINES ? opt.dur_lines : opt.dur_ints;
			char name[48];
			int r;
			if (always)
				n = n / opt.dur_always_div ? n / opt.dur_always_div : 1;
			snprintf(name, sizeof(name), "dur-%s%s.txt", dur_in_key[in], always ? "-always" : "");
			dur_input[in][always].path = tu_path(tmpdir, name);
			dur_input[in][always].records = n;
			r = in == DIN_LINES ? write_lines(dur_input[in][always].path, n, DUR_LINE,
			                                               &dur_input[in][always].bytes) :
			    write_input(dur_input[in][always].path, IN_RAND, n, &dur_input[in][always].bytes);
			if (r < 0) {
				note("durability: cannot write %s", dur_input[in][always].path);
				return false;
			}
		}
	return true;
}

static void dur_once(int in, int mode)
{
	struct dur_result *res = &dur[in][mode];
	const struct dur_input *src = &dur_input[in][mode == DM_ALWAYS];
	struct daemon_run job = {
		.cfg = {.format = in == DIN_LINES ? "line" : "int", .sync = dur_mode_key[mode],
		        .sync_interval = mode == DM_INTERVAL ? 10 : 0},
		.input = src->path, .count = src->records, .to_file = true,
	};
	struct child_use use[2];
	double s = 0;

	res->ran = true;
	res->records = src->records;
	if (res->failed)
		return;
	if (mode == DM_DISK) {
		s = disk_write(dur_bytes[in]);
		if (s <= 0) {
			snprintf(res->why, sizeof(res->why), "writing %" PRIu64 " bytes to %s: %s", dur_bytes[in],
			         tmpdir, strerror(errno));
			res->failed = true;
			failed = true;
			return;
		}
	} else if (run_daemons(&job, res->why, sizeof(res->why), &s, use) < 0) {
		res->failed = true;
		failed = true;
		note("durability: %s, sync %s: FAILED: %s", dur_in_key[in], dur_mode_key[mode], res->why);
		return;
	}
	if (mode != DM_DISK)
		total_verified += src->records;
	res->secs[res->nruns] = s;
	res->rps[res->nruns++] = (double)src->records / s;
}

void run_durability(void)
{
	struct load_mark m;

	load_mark(&m);
	if (!make_inputs()) {
		failed = true;
		for (int in = 0; in < NDINPUTS; in++)
			for (int mode = 0; mode < NDMODES; mode++) {
				dur[in][mode].ran = dur[in][mode].failed = true;
				snprintf(dur[in][mode].why, sizeof(dur[in][mode].why), "cannot write the input");
			}
		for (int in = 0; in < NDINPUTS && opt.peers; in++)
			for (int p = 0; p < NPEERS; p++) {
				peers[in][p].ran = peers[in][p].failed = true;
				snprintf(peers[in][p].why, sizeof(peers[in][p].why), "cannot write the input");
			}
		goto out;
	}
	for (int in = 0; in < NDINPUTS; in++) {
		/* each record's frame in the queue file, and the output file */
		uint64_t frame = in == DIN_LINES ? mmapq_frame_size(DUR_LINE) : mmapq_frame_size(8);
		dur_bytes[in] = dur_input[in][0].records * frame + dur_input[in][0].bytes;
	}
	for (int run = 0; run < opt.runs; run++) {
		double sy = disk_sync_once();
		if (sy > 0)
			disk.sync_s[disk.nruns++] = sy;
		for (int in = 0; in < NDINPUTS; in++) {
			for (int mode = 0; mode < NDMODES; mode++)
				dur_once(in, mode);
			for (int p = 0; p < NPEERS && opt.peers; p++)
				peer_once(in, p);
		}
	}
	if (disk.nruns)
		disk.med_sync_s = median(disk.sync_s, disk.nruns);
	for (int in = 0; in < NDINPUTS; in++) {
		const struct dur_result *never = &dur[in][DM_NEVER];
		for (int mode = 0; mode < NDMODES; mode++) {
			struct dur_result *res = &dur[in][mode];
			if (res->failed || !res->nruns)
				continue;
			spread(res->rps, res->nruns, &res->med_rps, &res->lo_rps, &res->hi_rps);
			res->med_secs = median(res->secs, res->nruns);
			if (!never->failed && never->nruns == res->nruns) {
				double ratio[MAX_RUNS];
				for (int i = 0; i < res->nruns; i++)
					ratio[i] = res->rps[i] / never->rps[i];
				spread(ratio, res->nruns, &res->med_ratio, &res->lo_ratio, &res->hi_ratio);
			}
			note("durability: %-5s %-14s %7.3f s  %10.0f records/s  %.2fx never [%.2f-%.2f]",
			     dur_in_key[in], dur_row_label(mode), res->med_secs, res->med_rps, res->med_ratio,
			     res->lo_ratio, res->hi_ratio);
		}
	}
	if (opt.peers)
		peers_summarize();
out:
	load_section_end("durability", &m);
}

double dur_ratio(int in, int mode)
{
	const struct dur_result *a = &dur[in][mode];
	return a->failed || !a->nruns ? 0 : a->med_ratio;
}

const char *dur_row_label(int mode)
{
	static const char *const label[NDMODES] = {
		"sync = never", "sync = batch", "sync = interval", "sync = always", "disk (dd)",
	};
	return label[mode];
}

void dur_free(void)
{
	for (int in = 0; in < NDINPUTS; in++)
		for (int a = 0; a < 2; a++) {
			if (dur_input[in][a].path)
				unlink(dur_input[in][a].path);
			free(dur_input[in][a].path);
			dur_input[in][a].path = NULL;
		}
}
