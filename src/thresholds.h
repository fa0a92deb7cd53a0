/*
 * thresholds.h - the calibrated sizes from which zero-copy pays, per route.
 *
 * Read once per process from the thresholds file `zcio calibrate` writes
 * ($ZCIO_THRESHOLDS, else ~/.config/zcio/thresholds), else built in.
 */
#ifndef ZCIO_THRESHOLDS_H
#define ZCIO_THRESHOLDS_H

#include <stdint.h>

/* The threshold for key (enum zcio_threshold_key), without the
 * ZCIO_COPY_THRESHOLD override: ZCIO_THRESHOLD_NEVER or bytes. */
uint64_t zcio__threshold_file(int key);

/*
 * The threshold to use for a decision: from_opts when non-zero (1 means
 * always zero-copy), else the file's or built-in value for key.  Returns
 * UINT64_MAX for "never".
 */
uint64_t zcio__threshold_for(int key, uint32_t from_opts);

/* Parse one thresholds file text into values[ZCIO_THR_COUNT] (entries
 * the text does not set are left alone).  Returns the number of keys set.
 * For unit tests. */
int zcio__thresholds_parse(const char *text, uint64_t *values);

/* Forget what was loaded, so the next lookup reads the file again (unit
 * tests only: not safe while other threads use thresholds). */
void zcio__thresholds_reset(void);

#endif
