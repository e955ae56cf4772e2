/* lg_stats.c - what the load generator measures with: the monotonic clock,
 * CPU time and RSS of a process from /proc, the kernel's TCP memory, and a
 * log-linear latency histogram that costs one increment per sample (no
 * sample array, so ten million deliveries cost the same memory as ten).
 */
#include "lg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

uint64_t lg_deadline_ns;

uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return (int)n;
}

int64_t lg_proc_cpu_us(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        return -1;
    /* the command name may hold spaces and parentheses: fields start after the last ')' */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p += 2; /* field 3 (state) */
    unsigned long long ut = 0, st = 0;
    /* fields 3..13 are skipped, 14 = utime, 15 = stime */
    for (int field = 3; field < 14 && p; field++) {
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    if (!p || sscanf(p, "%llu %llu", &ut, &st) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (int64_t)((ut + st) * 1000000ull / (unsigned long long)(hz > 0 ? hz : 100));
}

int64_t lg_proc_rss_kib(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        return -1;
    char *p = strstr(buf, "VmRSS:");
    return p ? strtoll(p + 6, NULL, 10) : -1;
}

int64_t lg_sockstat_tcp_kib(void)
{
    char buf[1024];
    if (read_small("/proc/net/sockstat", buf, sizeof buf) <= 0)
        return -1;
    char *p = strstr(buf, "TCP:");
    p = p ? strstr(p, " mem ") : NULL;
    if (!p)
        return -1;
    return strtoll(p + 5, NULL, 10) * (sysconf(_SC_PAGESIZE) / 1024);
}

int64_t lg_meminfo_kib(const char *key)
{
    char buf[8192];
    if (read_small("/proc/meminfo", buf, sizeof buf) <= 0)
        return -1;
    char *p = strstr(buf, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

int64_t lg_self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
           (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
}

int64_t lg_servers_cpu_us(void)
{
    int64_t sum = 0;
    int known = 0;
    for (int i = 0; i < lg.n_targets; i++) {
        if (lg.targets[i].pid <= 0)
            continue;
        /* two targets may be one process (same server twice): count it once */
        int dup = 0;
        for (int j = 0; j < i; j++)
            dup |= lg.targets[j].pid == lg.targets[i].pid;
        if (dup)
            continue;
        int64_t v = lg_proc_cpu_us(lg.targets[i].pid);
        if (v < 0)
            return -1;
        sum += v;
        known = 1;
    }
    return known ? sum : -1;
}

/* ---- histogram -------------------------------------------------------------- */

static int hist_bin(uint64_t us)
{
    if (us < 1024)
        return (int)us;
    int e = 63 - __builtin_clzll(us); /* 10.. */
    if (e > 40) {
        e = 40;
        us = (1ull << 41) - 1;
    }
    return 1024 + (e - 10) * 512 + (int)((us >> (e - 9)) & 511);
}

/* Middle of a bin, in microseconds. */
static double bin_value(int i)
{
    if (i < 1024)
        return i;
    int e = 10 + (i - 1024) / 512;
    uint64_t sub = (uint64_t)((i - 1024) % 512);
    double lo = (double)((512 + sub) << (e - 9));
    return lo + (double)(1ull << (e - 9)) / 2.0;
}

void lg_hist_add(lg_hist *h, uint64_t us)
{
    h->bin[hist_bin(us)]++;
    h->count++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

double lg_hist_quantile(const lg_hist *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank >= h->count)
        return (double)h->max_us;
    uint64_t seen = 0;
    for (int i = 0; i < LG_HIST_BINS; i++) {
        seen += h->bin[i];
        if (seen >= rank) {
            double v = bin_value(i);
            return v > (double)h->max_us ? (double)h->max_us : v;
        }
    }
    return (double)h->max_us;
}

int lg_hist_write_cdf(const lg_hist *h, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f, "# latency_ms cumulative_fraction (%llu samples)\n", (unsigned long long)h->count);
    uint64_t seen = 0;
    for (int i = 0; i < LG_HIST_BINS && h->count; i++) {
        if (!h->bin[i])
            continue;
        seen += h->bin[i];
        fprintf(f, "%.4f %.7f\n", bin_value(i) / 1000.0, (double)seen / (double)h->count);
    }
    return fclose(f) == 0 ? 0 : -errno;
}

/* ---- the report: one human table, then one machine-readable line ------------------- */

#define REPORT_MAX 48

static struct {
    const char *scenario, *label;
    int n;
    struct {
        char key[40];
        char human[64];
        char val[64];
    } row[REPORT_MAX];
} g_rep;

void lg_report_begin(const char *scenario, const char *label)
{
    g_rep.scenario = scenario;
    g_rep.label = label;
    g_rep.n = 0;
}

void lg_report(const char *key, const char *human, const char *fmt, ...)
{
    if (g_rep.n >= REPORT_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    snprintf(g_rep.row[g_rep.n].key, sizeof g_rep.row[0].key, "%s", key);
    snprintf(g_rep.row[g_rep.n].human, sizeof g_rep.row[0].human, "%s", human ? human : key);
    vsnprintf(g_rep.row[g_rep.n].val, sizeof g_rep.row[0].val, fmt, ap);
    va_end(ap);
    g_rep.n++;
}

int lg_report_end(bool ok)
{
    printf("\n| %s against %s | |\n| --- | ---: |\n", g_rep.scenario, g_rep.label);
    for (int i = 0; i < g_rep.n; i++)
        if (g_rep.row[i].human[0] != '-')
            printf("| %s | %s |\n", g_rep.row[i].human, g_rep.row[i].val);
    if (lg.first_error[0])
        printf("| first error | %s |\n", lg.first_error);
    printf("\nresult scenario=%s server=%s ok=%d", g_rep.scenario, g_rep.label, ok ? 1 : 0);
    for (int i = 0; i < g_rep.n; i++)
        printf(" %s=%s", g_rep.row[i].key, g_rep.row[i].val);
    if (lg.first_error[0])
        printf(" error=\"%s\"", lg.first_error);
    printf("\n");
    fflush(stdout);
    return ok ? 0 : 1;
}

int lg_machine_cpu(uint64_t *busy, uint64_t *total)
{
    char buf[512];
    unsigned long long v[10] = { 0 };
    if (read_small("/proc/stat", buf, sizeof buf) <= 0)
        return -1;
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
               &v[7]) != 8)
        return -1;
    *total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    *busy = *total - v[3] - v[4]; /* all but idle and iowait */
    return 0;
}
