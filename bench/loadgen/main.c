/* main.c - the load generator's command line: parses options, checks that
 * every target is a loopback address, arms the time bound and runs one
 * scenario. See usage() and docs/BENCHMARKS.md.
 */
#include "lg.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void lg_chat_init_pad(void);

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen SCENARIO --url URL [--pid PID] [options]\n"
            "\n"
            "Scenarios (each ends with a markdown table and one line \"result scenario=... ok=0|1 k=v ...\"):\n"
            "  idle        open --conns N connections (or --steps a,b,c), hold them; connect rate, server RSS per conn\n"
            "  join-storm  --conns N users user:join and room:join one room at once; time until all saw the final state\n"
            "  fanout      --receivers R, --senders S, --messages M each, --window W in flight; deliveries/s, latency\n"
            "  cluster     fanout with two --url (and two --pid): clients alternate between the servers\n"
            "  private     --pairs P ping-pong --messages M private messages; round trips/s, latency\n"
            "\n"
            "Options:\n"
            "  --url URL          ws://127.0.0.1:PORT (or http://, or HOST:PORT); repeat for cluster. Loopback only.\n"
            "  --pid PID          server process, for CPU and RSS from /proc; repeat to match --url\n"
            "  --label NAME       server name in the report (default: server)\n"
            "  --transport T      websocket (default) or polling\n"
            "  --conns N          idle, join-storm (default 1000)\n"
            "  --steps a,b,...    idle: checkpoints, cumulative connection counts (RSS read at each)\n"
            "  --procs K          idle: load generator processes (default: one per 9,000 connections)\n"
            "  --receivers R --senders S --messages M --window W --size BYTES   fanout (100, 1, 100, 1, 64)\n"
            "  --pairs P          private (default 50)\n"
            "  --room NAME        room used by join-storm and fanout (default bench)\n"
            "  --sources K        loopback source addresses 127.0.0.1..K (default 8)\n"
            "  --concurrency C    handshakes in flight at most (default 256)\n"
            "  --settle MS        idle: pause before each RSS reading (default 1000)\n"
            "  --hold S           idle: seconds to hold after the last step (default 2)\n"
            "  --timeout S        hard bound of the whole run (default 120); exits 1 when it passes\n"
            "  --cdf FILE         write the latency CDF (latency_ms fraction)\n"
            "  --series FILE      idle: write \"connections rss_kib tcp_kib\" per checkpoint\n"
            "  --skip REASON      print a skipped result for SCENARIO and exit 0\n");
}

/* ws://127.0.0.1:3000[/...] | http://... | 127.0.0.1:3000 | 3000 */
static int parse_url(const char *u, lg_target *t)
{
    const char *p = strstr(u, "://");
    p = p ? p + 3 : u;
    const char *colon = strchr(p, ':');
    if (!colon) {
        snprintf(t->host, sizeof t->host, "127.0.0.1");
        t->port = atoi(p);
    } else {
        size_t hl = (size_t)(colon - p);
        if (hl >= sizeof t->host)
            return -1;
        memcpy(t->host, p, hl);
        t->host[hl] = 0;
        if (strcmp(t->host, "localhost") == 0)
            snprintf(t->host, sizeof t->host, "127.0.0.1");
        t->port = atoi(colon + 1);
    }
    struct in_addr a;
    if (inet_pton(AF_INET, t->host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
        fprintf(stderr, "loadgen: %s is not a loopback address (127.0.0.0/8); refusing\n", t->host);
        return -1;
    }
    return t->port > 0 && t->port < 65536 ? 0 : -1;
}

int main(int argc, char **argv)
{
    lg_opts o = {
        .label = "server",
        .conns = 1000,
        .receivers = 100,
        .senders = 1,
        .messages = 100,
        .window = 1,
        .size = 64,
        .pairs = 50,
        .hold_s = 2,
        .settle_ms = 1000,
        .timeout_s = 120,
        .room = "bench",
    };
    int n_pids = 0;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    o.scenario = argv[1];
    lg.n_sources = 8;
    lg.concurrency = 256;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (OPT("--url")) {
            if (lg.n_targets >= LG_MAX_TARGETS || parse_url(v, &lg.targets[lg.n_targets]) != 0) {
                fprintf(stderr, "loadgen: bad or extra --url %s\n", v);
                return 2;
            }
            lg.n_targets++;
        } else if (OPT("--pid")) {
            if (n_pids < LG_MAX_TARGETS)
                lg.targets[n_pids++].pid = (pid_t)atoi(v);
        } else if (OPT("--label")) {
            o.label = v;
        } else if (OPT("--transport")) {
            lg.polling = strcmp(v, "polling") == 0;
        } else if (OPT("--conns")) {
            o.conns = (uint32_t)strtoul(v, NULL, 10);
        } else if (OPT("--steps")) {
            char *s = strdup(v), *save = NULL;
            for (char *t = strtok_r(s, ",", &save); t && o.n_steps < 16; t = strtok_r(NULL, ",", &save))
                o.steps[o.n_steps++] = (uint32_t)strtoul(t, NULL, 10);
            free(s);
        } else if (OPT("--procs")) {
            o.procs = atoi(v);
        } else if (OPT("--receivers")) {
            o.receivers = (uint32_t)strtoul(v, NULL, 10);
        } else if (OPT("--senders")) {
            o.senders = (uint32_t)strtoul(v, NULL, 10);
        } else if (OPT("--messages")) {
            o.messages = (uint32_t)strtoul(v, NULL, 10);
        } else if (OPT("--window")) {
            o.window = (uint32_t)strtoul(v, NULL, 10);
        } else if (OPT("--size")) {
            o.size = (uint32_t)strtoul(v, NULL, 10);
        } else if (OPT("--pairs")) {
            o.pairs = (uint32_t)strtoul(v, NULL, 10);
        } else if (OPT("--room")) {
            o.room = v;
        } else if (OPT("--sources")) {
            lg.n_sources = atoi(v);
        } else if (OPT("--concurrency")) {
            lg.concurrency = (uint32_t)strtoul(v, NULL, 10);
        } else if (OPT("--settle")) {
            o.settle_ms = atoi(v);
        } else if (OPT("--hold")) {
            o.hold_s = atof(v);
        } else if (OPT("--timeout")) {
            o.timeout_s = atof(v);
        } else if (OPT("--cdf")) {
            o.cdf_path = v;
        } else if (OPT("--series")) {
            o.series_path = v;
        } else if (OPT("--skip")) {
            o.skip = true;
            o.skip_reason = v;
        } else {
            fprintf(stderr, "loadgen: unknown or incomplete option %s\n", a);
            usage(stderr);
            return 2;
        }
#undef OPT
    }

    if (o.skip) {
        printf("\n| %s against %s | |\n| --- | ---: |\n| skipped | %s |\n", o.scenario, o.label, o.skip_reason);
        printf("\nresult scenario=%s server=%s ok=1 skipped=1 reason=\"%s\"\n", o.scenario, o.label, o.skip_reason);
        return 0;
    }
    if (lg.n_targets == 0) {
        fprintf(stderr, "loadgen: --url is required\n");
        return 2;
    }
    if (o.size > 60000 || o.size < 1 || lg.n_sources < 1 || lg.n_sources > 250) {
        fprintf(stderr, "loadgen: --size must be 1..60000 and --sources 1..250\n");
        return 2;
    }
    if (strcmp(o.scenario, "cluster") == 0 && lg.n_targets != 2) {
        fprintf(stderr, "loadgen: cluster needs two --url\n");
        return 2;
    }

    lg_chat_init_pad();
    lg_deadline_ns = lg_now_ns() + (uint64_t)(o.timeout_s * 1e9);
    alarm((unsigned)o.timeout_s + 20); /* backstop: SIGALRM ends the process */
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (strcmp(o.scenario, "idle") == 0)
        return lg_idle(&o);
    if (strcmp(o.scenario, "join-storm") == 0)
        return lg_join_storm(&o);
    if (strcmp(o.scenario, "fanout") == 0 || strcmp(o.scenario, "cluster") == 0)
        return lg_fanout(&o);
    if (strcmp(o.scenario, "private") == 0)
        return lg_private(&o);
    fprintf(stderr, "loadgen: unknown scenario %s\n", o.scenario);
    usage(stderr);
    return 2;
}
