/* metrics.h - Prometheus text exposition helpers and a fixed-bucket
 * latency histogram.
 *
 * Layers keep their own counters in their own structs and expose them with
 * a stats function; main.c assembles GET /metrics from those with the
 * helpers below. Nothing here is global. */
#ifndef PARLEY_UTIL_METRICS_H
#define PARLEY_UTIL_METRICS_H

#include <stdint.h>

#include "util/buf.h"

/* Upper bounds of the latency buckets, in microseconds (+Inf is implied). */
#define METRICS_BUCKETS 12
extern const double metrics_bucket_us[METRICS_BUCKETS];

typedef struct {
    uint64_t counts[METRICS_BUCKETS + 1]; /* last: above every bound */
    uint64_t n;
    double sum_us;
} metrics_hist;

void metrics_hist_observe(metrics_hist *h, double us);

/* "# HELP name help\n# TYPE name type\n" */
void metrics_header(buf_t *out, const char *name, const char *type, const char *help);
/* One sample: name{labels} value; labels may be NULL or "" (no braces). */
void metrics_sample(buf_t *out, const char *name, const char *labels, double value);
/* A metric of one unlabelled sample: its header, then name value. type is
 * "counter" or "gauge". */
void metrics_single(buf_t *out, const char *name, const char *type, const char *help,
                    double value);
/* A whole histogram family member (seconds, as Prometheus prefers):
 * name_bucket{labels,le=...}, name_sum, name_count. */
void metrics_histogram(buf_t *out, const char *name, const char *labels, const metrics_hist *h);

#endif
