/* metrics.c - Prometheus text helpers and histograms (see metrics.h). */
#include "util/metrics.h"

const double metrics_bucket_us[METRICS_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 1000000,
};

void metrics_hist_observe(metrics_hist *h, double us)
{
    int i = 0;
    while (i < METRICS_BUCKETS && us > metrics_bucket_us[i])
        i++;
    h->counts[i]++;
    h->n++;
    h->sum_us += us;
}

void metrics_header(buf_t *out, const char *name, const char *type, const char *help)
{
    buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(buf_t *out, const char *name, const char *labels, double value)
{
    if (labels && *labels)
        buf_appendf(out, "%s{%s} %.17g\n", name, labels, value);
    else
        buf_appendf(out, "%s %.17g\n", name, value);
}

void metrics_single(buf_t *out, const char *name, const char *type, const char *help,
                    double value)
{
    metrics_header(out, name, type, help);
    metrics_sample(out, name, NULL, value);
}

void metrics_histogram(buf_t *out, const char *name, const char *labels, const metrics_hist *h)
{
    const char *sep = labels && *labels ? "," : "";
    const char *lab = labels ? labels : "";
    uint64_t cum = 0;
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        cum += h->counts[i];
        buf_appendf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, lab, sep,
                    metrics_bucket_us[i] / 1e6, (unsigned long long)cum);
    }
    cum += h->counts[METRICS_BUCKETS];
    buf_appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lab, sep, (unsigned long long)cum);
    if (*lab) {
        buf_appendf(out, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name, lab, h->sum_us / 1e6, name,
                    lab, (unsigned long long)h->n);
    } else {
        buf_appendf(out, "%s_sum %.9g\n%s_count %llu\n", name, h->sum_us / 1e6, name,
                    (unsigned long long)h->n);
    }
}
