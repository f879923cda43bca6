/* inrun_pool: see inrun_pool.h. */
#include "inrun_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

#define MAX_POOL_THREADS 64
#define SPIN_CHECKS 2000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER;
/* Serialises whole jobs: the addon is called from one JavaScript thread, but workers of Node
 * (worker_threads) share this process and could call it at the same time. */
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;

static int wanted_threads = 1;
static int started_workers = 0;

/* The job in flight, read by workers under `lock`. */
static struct {
  inrun_range_fn fn;
  void *arg;
  int64_t n;
  int parts;
  int remaining; /* worker parts not yet done */
  uint64_t generation;
} job;

static void run_part(int part) {
  const int64_t begin = job.n * part / job.parts;
  const int64_t end = job.n * (part + 1) / job.parts;
  if (end > begin) job.fn(job.arg, begin, end);
}

static void *worker_main(void *data) {
  const int part = (int)(intptr_t)data; /* worker w takes part w; the caller takes part 0 */
  uint64_t seen = 0;
  pthread_mutex_lock(&lock);
  for (;;) {
    if (job.generation == seen) {
      /* Spin briefly before sleeping: the next call usually comes within microseconds. */
      pthread_mutex_unlock(&lock);
      for (int i = 0; i < SPIN_CHECKS && __atomic_load_n(&job.generation, __ATOMIC_ACQUIRE) == seen; i++)
        sched_yield();
      pthread_mutex_lock(&lock);
    }
    while (job.generation == seen) pthread_cond_wait(&wake, &lock);
    seen = job.generation;
    if (part >= job.parts) continue;
    pthread_mutex_unlock(&lock);
    run_part(part);
    pthread_mutex_lock(&lock);
    if (--job.remaining == 0) pthread_cond_signal(&finished);
  }
  return NULL;
}

void inrun_pool_set_threads(int threads) {
  if (threads < 1) threads = 1;
  if (threads > MAX_POOL_THREADS) threads = MAX_POOL_THREADS;
  pthread_mutex_lock(&job_lock);
  wanted_threads = threads;
  pthread_mutex_unlock(&job_lock);
}

int inrun_pool_threads(void) { return wanted_threads; }

/* Starts workers up to `threads` − 1; returns how many threads a job can use. */
static int ensure_workers(int threads) {
  while (started_workers < threads - 1) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const int ok = pthread_create(&thread, &attr, worker_main, (void *)(intptr_t)(started_workers + 1)) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) break; /* run with the workers there are */
    started_workers++;
  }
  return started_workers + 1 < threads ? started_workers + 1 : threads;
}

void inrun_parallel_for(int64_t n, int64_t min_part, inrun_range_fn fn, void *arg) {
  if (n <= 0) return;
  if (min_part < 1) min_part = 1;
  int64_t parts = n / min_part;
  if (parts > wanted_threads) parts = wanted_threads;
  if (parts < 2) {
    fn(arg, 0, n);
    return;
  }
  pthread_mutex_lock(&job_lock);
  parts = ensure_workers((int)parts);
  if (parts < 2) {
    pthread_mutex_unlock(&job_lock);
    fn(arg, 0, n);
    return;
  }
  pthread_mutex_lock(&lock);
  job.fn = fn;
  job.arg = arg;
  job.n = n;
  job.parts = (int)parts;
  job.remaining = (int)parts - 1;
  /* Atomic: spinning workers read it without the lock. */
  __atomic_store_n(&job.generation, job.generation + 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&lock);
  run_part(0);
  pthread_mutex_lock(&lock);
  while (job.remaining > 0) pthread_cond_wait(&finished, &lock);
  pthread_mutex_unlock(&lock);
  pthread_mutex_unlock(&job_lock);
}
