/*
 * inrun_pool: worker threads that split the addon's loops over the machine's cores.
 *
 * They carry all of the addon's parallelism: large matrix products (in blocks, each a
 * single-threaded OpenBLAS call), attention's many small products and the long element-wise
 * loops. `inrun_parallel_for` splits a range [0, n) into contiguous parts, one per thread (the
 * caller takes the first), and returns when all are done. Between calls a worker yields for a
 * moment (the next call usually follows within microseconds) and then sleeps on a condition
 * variable; OpenBLAS's own threads are not used, so nothing else spins. Callers split only over
 * independent outputs, each computed as a single thread would.
 */
#ifndef INRUN_POOL_H
#define INRUN_POOL_H

#include <stdint.h>

/* Runs fn(arg, begin, end) over contiguous parts of [0, n). */
typedef void (*inrun_range_fn)(void *arg, int64_t begin, int64_t end);

/*
 * Threads a split may use, the caller included (1: everything runs on the caller). Workers are
 * started on first use and kept; a smaller count leaves the extra ones asleep.
 */
void inrun_pool_set_threads(int threads);
int inrun_pool_threads(void);

/*
 * Splits [0, n) into at most `threads` parts of at least `min_part` items each (fewer parts when
 * n is small: below 2·min_part the caller does it all) and runs them in parallel.
 */
void inrun_parallel_for(int64_t n, int64_t min_part, inrun_range_fn fn, void *arg);

#endif
