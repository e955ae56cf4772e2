/* lg_idle.c - the idle scenario: open N connections (each through the
 * Engine.IO open and the Socket.IO CONNECT), hold them while answering
 * pings, and report the connect rate, the server's CPU per connection and
 * the server's RSS per connection.
 *
 * One process may hold at most ~20,000 fds here, so the connections are
 * split over worker processes (fork). The parent is only a coordinator: for
 * each checkpoint of --steps it tells every worker how many connections to
 * hold ("T n\n" on a pipe), waits for each to answer ("R ready failed
 * dropped\n"), lets the server settle and reads its RSS. "Q\n" ends a worker,
 * which answers "C cpu_us\n" and exits. Workers die with the coordinator
 * (PR_SET_PDEATHSIG), so nothing outlives a killed run.
 */
#include "lg.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct worker {
    pid_t pid;
    int cmd;  /* coordinator -> worker */
    int rep;  /* worker -> coordinator */
    uint64_t ready, failed, dropped;
    int64_t cpu_us;
} worker;

static uint32_t share(uint32_t total, int k, int procs)
{
    return (uint32_t)((uint64_t)total * (uint64_t)(k + 1) / (uint64_t)procs -
                      (uint64_t)total * (uint64_t)k / (uint64_t)procs);
}

static void worker_main(int k, int procs, uint32_t last, int cmd_fd, int rep_fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (lg_init(share(last, k, procs)) != 0) {
        dprintf(rep_fd, "X init failed\n");
        _exit(1);
    }
    lg.cmd_fd = cmd_fd;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(lg.ep, EPOLL_CTL_ADD, cmd_fd, &ev);

    uint32_t target = 0;
    int replied = 1;
    for (;;) {
        if (lg_now_ns() > lg_deadline_ns)
            _exit(3);
        lg_pump(target);
        int cmd = lg_poll_once(20);
        if (!replied && lg.ready + lg.failed >= target) {
            dprintf(rep_fd, "R %llu %llu %llu %s\n", (unsigned long long)lg.ready,
                    (unsigned long long)lg.failed, (unsigned long long)lg.dropped, lg.first_error);
            replied = 1;
        }
        if (!cmd)
            continue;
        char buf[64];
        ssize_t n = read(cmd_fd, buf, sizeof buf - 1);
        if (n <= 0)
            _exit(2); /* coordinator gone */
        buf[n] = 0;
        if (buf[0] == 'T') {
            target = (uint32_t)strtoul(buf + 1, NULL, 10);
            replied = 0;
        } else if (buf[0] == 'Q') {
            int64_t cpu = lg_self_cpu_us();
            lg_close_all();
            dprintf(rep_fd, "C %lld %llu\n", (long long)cpu, (unsigned long long)lg.dropped);
            _exit(0);
        }
    }
}

/* Reads one line from a worker, bounded by the run's deadline. */
static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        int64_t left_ms = (int64_t)(lg_deadline_ns - lg_now_ns()) / 1000000;
        if ((int64_t)(lg_deadline_ns - lg_now_ns()) <= 0)
            return -ETIMEDOUT;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, (int)(left_ms > 1000 ? 1000 : left_ms + 1));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t got = read(fd, buf + n, 1);
        if (got <= 0)
            return -EPIPE;
        if (buf[n] == '\n') {
            buf[n] = 0;
            return 0;
        }
        n++;
    }
    buf[n] = 0;
    return 0;
}

/* Sleeps ms milliseconds (workers keep answering pings meanwhile). */
static void nap(int ms)
{
    if (ms > 0)
        usleep((useconds_t)ms * 1000u);
}

int lg_idle(const lg_opts *o)
{
    uint32_t steps[16];
    int n_steps = o->n_steps, procs = o->procs, rc = 1;
    worker w[64];
    pid_t spid = lg.targets[0].pid;

    if (n_steps == 0) {
        steps[0] = o->conns;
        n_steps = 1;
    } else {
        memcpy(steps, o->steps, sizeof steps);
    }
    uint32_t last = steps[n_steps - 1];
    if (procs < 1)
        procs = (int)((last + 8999) / 9000); /* keep each worker well under the fd limit */
    if (procs < 1)
        procs = 1;
    if (procs > 64)
        procs = 64;

    memset(w, 0, sizeof w);
    for (int k = 0; k < procs; k++) {
        int a[2], b[2];
        if (pipe(a) != 0 || pipe(b) != 0) {
            perror("pipe");
            return 1;
        }
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            close(a[1]);
            close(b[0]);
            for (int j = 0; j < k; j++) {
                close(w[j].cmd);
                close(w[j].rep);
            }
            worker_main(k, procs, last, a[0], b[1]);
        }
        close(a[0]);
        close(b[1]);
        w[k].pid = pid;
        w[k].cmd = a[1];
        w[k].rep = b[0];
    }

    double xs[17], ys[17];
    int np = 0;
    nap(o->settle_ms);
    int64_t rss0 = spid > 0 ? lg_proc_rss_kib(spid) : -1;
    int64_t tcp0 = lg_sockstat_tcp_kib(), slab0 = lg_meminfo_kib("Slab:");
    int64_t rss = rss0, tcp = tcp0, slab = slab0;
    uint64_t connect_ns = 0;
    int64_t srv_cpu = 0, lg_cpu = 0;
    uint64_t ready = 0, failed = 0, dropped = 0;
    int64_t h0 = 0, h1 = 0;
    double hold_wall = 0;
    FILE *series = o->series_path ? fopen(o->series_path, "w") : NULL;
    if (series)
        fprintf(series, "# connections server_rss_kib kernel_tcp_buffers_kib kernel_slab_kib (%s)\n0 %lld %lld %lld\n",
                o->label, (long long)rss0, (long long)tcp0, (long long)slab0);
    xs[np] = 0;
    ys[np++] = (double)rss0;

    for (int s = 0; s < n_steps; s++) {
        int64_t c0 = lg_servers_cpu_us(), l0 = 0, l1 = 0;
        for (int k = 0; k < procs; k++)
            l0 += lg_proc_cpu_us(w[k].pid);
        uint64_t t0 = lg_now_ns();
        for (int k = 0; k < procs; k++)
            dprintf(w[k].cmd, "T %u\n", share(steps[s], k, procs));
        ready = failed = dropped = 0;
        for (int k = 0; k < procs; k++) {
            char line[128];
            unsigned long long r = 0, f = 0, d = 0;
            if (read_line(w[k].rep, line, sizeof line) != 0 || sscanf(line, "R %llu %llu %llu", &r, &f, &d) != 3) {
                lg_note_error("worker %d did not reach %u connections in time", k, share(steps[s], k, procs));
                goto out;
            }
            ready += r;
            failed += f;
            dropped += d;
            const char *why = line;
            for (int sp = 0; sp < 4 && why; sp++)
                why = strchr(why + 1, ' ');
            if (why && why[1])
                lg_note_error("worker %d: %s", k, why + 1);
        }
        uint64_t t1 = lg_now_ns();
        int64_t c1 = lg_servers_cpu_us();
        for (int k = 0; k < procs; k++)
            l1 += lg_proc_cpu_us(w[k].pid);
        connect_ns += t1 - t0;
        srv_cpu += c1 - c0;
        lg_cpu += l1 - l0;
        nap(o->settle_ms);
        rss = spid > 0 ? lg_proc_rss_kib(spid) : -1;
        tcp = lg_sockstat_tcp_kib();
        slab = lg_meminfo_kib("Slab:");
        fprintf(stderr, "idle: %u connections (%llu ready, %llu failed) in %.2f s, server RSS %lld KiB\n", steps[s],
                (unsigned long long)ready, (unsigned long long)failed, (double)(t1 - t0) / 1e9, (long long)rss);
        if (series)
            fprintf(series, "%llu %lld %lld %lld\n", (unsigned long long)ready, (long long)rss, (long long)tcp,
                    (long long)slab);
        xs[np] = (double)ready;
        ys[np++] = (double)rss;
        if (failed)
            break;
    }

    /* hold: the connections stay open and answer pings; measure what idling costs */
    h0 = lg_servers_cpu_us();
    uint64_t ht0 = lg_now_ns();
    nap((int)(o->hold_s * 1000));
    h1 = lg_servers_cpu_us();
    hold_wall = (double)(lg_now_ns() - ht0) / 1e3;

    rc = 0;
out:
    uint64_t dropped_end = 0; /* counted again at the end: the hold may drop some */
    for (int k = 0; k < procs; k++) {
        char line[128];
        long long cpu = 0;
        unsigned long long d = 0;
        dprintf(w[k].cmd, "Q\n");
        if (read_line(w[k].rep, line, sizeof line) == 0 && sscanf(line, "C %lld %llu", &cpu, &d) == 2)
            dropped_end += d;
        close(w[k].cmd);
        close(w[k].rep);
    }
    for (int k = 0; k < procs; k++) {
        int st;
        waitpid(w[k].pid, &st, 0);
    }
    if (series)
        fclose(series);
    if (dropped_end > dropped)
        dropped = dropped_end;

    /* least squares of RSS against connections over the checkpoints (the
     * empty server is left out when there are two or more: the first
     * connections also pay for tables and arenas that then last) */
    double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
    int first = np > 2 ? 1 : 0;
    np -= first;
    for (int i = first; i < first + np; i++) {
        sx += xs[i];
        sy += ys[i];
        sxx += xs[i] * xs[i];
        sxy += xs[i] * ys[i];
        syy += ys[i] * ys[i];
    }
    double den = np * sxx - sx * sx;
    double slope = den > 0 ? (np * sxy - sx * sy) / den : 0;     /* KiB per connection */
    double icpt = np ? (sy - slope * sx) / np : 0;
    double r2 = 0;
    if (den > 0) {
        double dy = np * syy - sy * sy;
        r2 = dy > 0 ? (np * sxy - sx * sy) * (np * sxy - sx * sy) / (den * dy) : 1;
    }

    double secs = (double)connect_ns / 1e9;
    bool ok = rc == 0 && failed == 0 && dropped == 0 && ready == last;
    lg_report_begin("idle", o->label);
    lg_report("conns", "connections held", "%llu", (unsigned long long)ready);
    lg_report("failed", "connections failed", "%llu", (unsigned long long)failed);
    lg_report("dropped", "connections dropped while held", "%llu", (unsigned long long)dropped);
    lg_report("procs", "load generator processes", "%d", procs);
    lg_report("connect_s", "time to connect all (s)", "%.3f", secs);
    lg_report("conn_per_s", "connections per second", "%.0f", secs > 0 ? (double)ready / secs : 0);
    lg_report("srv_cpu_us_per_conn", "server CPU per connection (us)", "%.1f",
              ready ? (double)srv_cpu / (double)ready : 0);
    lg_report("rss_base_kib", "server RSS before (KiB)", "%lld", (long long)rss0);
    lg_report("rss_kib", "server RSS after (KiB)", "%lld", (long long)rss);
    lg_report("rss_per_conn_b", "server RSS per connection (bytes)", "%.0f",
              ready ? (double)(rss - rss0) * 1024.0 / (double)ready : 0);
    lg_report("rss_slope_b", "RSS slope, least squares (bytes/conn)", "%.0f", slope * 1024.0);
    lg_report("rss_fit_r2", "RSS fit R^2", "%.5f", r2);
    lg_report("rss_1m_gib", "projected RSS at 1,000,000 (GiB)", "%.2f", (icpt + slope * 1e6) / 1048576.0);
    lg_report("tcp_kib_per_conn", "kernel TCP buffers per connection, both ends (KiB)", "%.2f",
              ready ? (double)(tcp - tcp0) / (double)ready : 0);
    lg_report("slab_kib_per_conn", "kernel slab per connection, both ends (KiB)", "%.2f",
              ready ? (double)(slab - slab0) / (double)ready : 0);
    lg_report("idle_cpu_pct", "server CPU while holding (%)", "%.2f",
              hold_wall > 0 ? (double)(h1 - h0) / hold_wall * 100.0 : 0);
    lg_report("lg_cpu_pct", "load generator CPU while connecting (%)", "%.0f",
              secs > 0 ? (double)lg_cpu / 1e6 / secs * 100.0 : 0);
    return lg_report_end(ok);
}
