// The sampling benchmark's workload: two threads, each spinning through a
// few nested functions for a fixed wall time. Built with -O2
// -fno-omit-frame-pointer so that frame-pointer call chains are complete.
//
//   busy2 [--cpu] SECONDS [RUSAGE_FILE]
//
// With --cpu the threads spin until the process has used SECONDS of CPU
// time (tests want a number of samples whatever the machine's load).
// At exit it writes its own CPU time (getrusage(RUSAGE_SELF), all threads)
// as JSON to RUSAGE_FILE, so that a collector's CPU time can be told apart
// from the workload's.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define NTHREADS 2

static double deadline;
/* The clock the deadline is on: CLOCK_MONOTONIC, or the process's CPU time with --cpu. */
static clockid_t deadline_clock = CLOCK_MONOTONIC;
// Keeps the arithmetic from being optimized away.
static volatile unsigned long sink;

static double clock_s(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now(void) { return clock_s(CLOCK_MONOTONIC); }

__attribute__((noinline)) static unsigned long leaf_mix(unsigned long x, int n) {
  for (int i = 0; i < n; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
  return x;
}

__attribute__((noinline)) static unsigned long leaf_shift(unsigned long x, int n) {
  for (int i = 0; i < n; i++) x ^= (x << 13) ^ (x >> 7) ^ (x << 17);
  return x;
}

// Two leaves with different weights, so a profile has more than one hot path.
__attribute__((noinline)) static unsigned long inner(unsigned long x) {
  x = leaf_mix(x, 300);
  return leaf_shift(x, 100);
}

__attribute__((noinline)) static unsigned long middle(unsigned long x) {
  for (int i = 0; i < 4; i++) x = inner(x + i);
  return x;
}

__attribute__((noinline)) static unsigned long outer(unsigned long x) {
  for (int i = 0; i < 4; i++) x = middle(x ^ i);
  return leaf_mix(x, 200);
}

static void *worker(void *arg) {
  unsigned long x = (unsigned long)arg + 1;
  while (clock_s(deadline_clock) < deadline) x = outer(x);
  sink = x;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--cpu") == 0) {
    deadline_clock = CLOCK_PROCESS_CPUTIME_ID;
    argv++;
    argc--;
  }
  if (argc < 2 || argc > 3 || atof(argv[1]) <= 0) {
    fprintf(stderr, "usage: busy2 [--cpu] SECONDS [RUSAGE_FILE]\n");
    return 2;
  }
  double start = now();
  deadline = clock_s(deadline_clock) + atof(argv[1]);
  pthread_t threads[NTHREADS];
  for (long i = 0; i < NTHREADS; i++) {
    if (pthread_create(&threads[i], NULL, worker, (void *)i) != 0) {
      perror("busy2: pthread_create");
      return 1;
    }
  }
  for (int i = 0; i < NTHREADS; i++) pthread_join(threads[i], NULL);
  if (argc == 3) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    FILE *f = fopen(argv[2], "w");
    if (f == NULL) {
      perror(argv[2]);
      return 1;
    }
    fprintf(f, "{\"utime\":%.6f,\"stime\":%.6f,\"wall\":%.6f}\n", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
            ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, now() - start);
    fclose(f);
  }
  return 0;
}
