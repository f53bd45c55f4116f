/*
 * The C baseline for bench/pmcrw-read.ts: read() of a task-clock counter on
 * another process, opened with the attributes the module uses for a
 * process-mode counting PMC (pinned, inherited by new threads, read with
 * enabled and running times).
 *
 *   pmcrw_read PID READS   prints the mean ns per read() over READS reads
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

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s PID READS\n", argv[0]);
		return 2;
	}
	pid_t pid = atoi(argv[1]);
	long reads = atol(argv[2]);

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
	int fd = syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0) {
		perror("perf_event_open");
		return 1;
	}

	uint64_t buf[3];
	for (int i = 0; i < 1000; i++) /* warm up */
		if (read(fd, buf, sizeof buf) != sizeof buf) {
			perror("read");
			return 1;
		}
	double t0 = now_ns();
	for (long i = 0; i < reads; i++)
		if (read(fd, buf, sizeof buf) != sizeof buf) {
			perror("read");
			return 1;
		}
	double t1 = now_ns();
	if (buf[1] != buf[2]) {
		fprintf(stderr, "the counter was multiplexed\n");
		return 1;
	}
	printf("%.1f\n", (t1 - t0) / reads);
	return 0;
}
