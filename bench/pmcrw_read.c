/*
 * The C baseline for bench/pmcrw-read.ts: read() of a task-clock counter on
 * another process, opened with the attributes the module uses for a
 * process-mode counting PMC (pinned, inherited by new threads, read with
 * enabled and running times); or read() of a group of such counters
 * (PERF_FORMAT_GROUP: a pinned leader and its members, one read for all).
 *
 *   pmcrw_read PID READS [GROUP]   prints the mean ns per read() over READS
 *                                  reads: wall time, then this thread's CPU time
 */
#define _GNU_SOURCE
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s PID READS [GROUP]\n", argv[0]);
		return 2;
	}
	pid_t pid = atoi(argv[1]);
	long reads = atol(argv[2]);
	int group = argc == 4 ? atoi(argv[3]) : 0;
	if (group < 0 || group > 64) {
		fprintf(stderr, "GROUP is 1 to 64 counters\n");
		return 2;
	}

	struct perf_event_attr attr;
	memset(&attr, 0, sizeof attr);
	attr.size = sizeof attr;
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_TASK_CLOCK;
	attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
	attr.pinned = 1;
	attr.inherit = 1;
#ifdef PERF_ATTR_SIZE_VER7
	attr.inherit_thread = 1;
#endif
	if (group)
		attr.read_format |= PERF_FORMAT_GROUP;
	int fd = syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) {
		perror("perf_event_open");
		return 1;
	}
	attr.pinned = 0; /* members follow their pinned leader */
	for (int i = 1; i < group; i++)
		if (syscall(SYS_perf_event_open, &attr, pid, -1, fd, PERF_FLAG_FD_CLOEXEC) < 0) {
			perror("perf_event_open (group member)");
			return 1;
		}

	/* one counter: value, enabled, running; a group: nr, enabled, running, values */
	uint64_t buf[3 + 64];
	size_t len = group ? (3 + group) * sizeof buf[0] : 3 * sizeof buf[0];
	for (int i = 0; i < 1000; i++) /* warm up */
		if (read(fd, buf, len) != (ssize_t)len) {
			perror("read");
			return 1;
		}
	double t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	for (long i = 0; i < reads; i++)
		if (read(fd, buf, len) != (ssize_t)len) {
			perror("read");
			return 1;
		}
	double t1 = now_ns(CLOCK_MONOTONIC), c1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
	if (buf[1] != buf[2]) { /* enabled vs running, in both layouts */
		fprintf(stderr, "the counter was multiplexed\n");
		return 1;
	}
	printf("%.1f %.1f\n", (t1 - t0) / reads, (c1 - c0) / reads);
	return 0;
}
