/* lg_chat.c - the chat scenarios: join-storm, fanout (and cluster, which is
 * fanout with its clients alternating between two servers) and private.
 *
 * Each runs in three parts: connect every client, set up names and rooms
 * with acknowledged events, then the measured part, bracketed by readings
 * of the server's CPU time (/proc/PID/stat) and of our own. Latency is end to
 * end: the sender writes its CLOCK_MONOTONIC time into the message content
 * ("T<ns> xxx..."), the receiver subtracts it from its own clock on arrival
 * (one machine, one clock). Received packets are matched with memmem on a
 * few fixed keys; nothing is parsed into a tree.
 */
#include "lg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lg_opts *g_o;
static lg_hist g_hist;
static uint64_t g_acks_ok, g_acks_err, g_chat_errors;
static uint64_t g_deliveries, g_expected, g_t_last;
static uint64_t g_done;        /* join-storm: clients done; private: round trips */
static char g_pad[65536];

#define ACK_SETUP 1000000000L  /* ack ids at or above this belong to the setup */

/* ---- helpers ------------------------------------------------------------------ */

static bool is(const char *name, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(name, lit, l) == 0;
}

/* Sends 2[<ack>]["event",<json>] ; ack < 0 for none. */
static void emit(lg_conn *c, long ack, const char *event, const char *json, size_t json_len)
{
    char buf[70000];
    int n = ack >= 0 ? snprintf(buf, 64, "2%ld[\"%s\",", ack, event) : snprintf(buf, 64, "2[\"%s\",", event);
    if (json_len > sizeof buf - (size_t)n - 2)
        json_len = sizeof buf - (size_t)n - 2;
    memcpy(buf + n, json, json_len);
    n += (int)json_len;
    buf[n++] = ']';
    lg_send_sio(c, buf, (size_t)n);
}

static void emit_str(lg_conn *c, long ack, const char *event, const char *s)
{
    char j[128];
    int n = snprintf(j, sizeof j, "\"%s\"", s);
    emit(c, ack, event, j, (size_t)n);
}

/* Writes "T<now ns> " padded with 'x' to `size` bytes into out. */
static int make_content(char *out, size_t cap, uint32_t size)
{
    int n = snprintf(out, cap, "T%llu ", (unsigned long long)lg_now_ns());
    if (size > (uint32_t)n && size < cap) {
        memcpy(out + n, g_pad, size - (uint32_t)n);
        n = (int)size;
    }
    return n;
}

/* The send time in a message:receive packet, 0 if absent. */
static uint64_t content_time(const char *pkt, size_t len)
{
    const char *k = memmem(pkt, len, "\"content\":\"T", 12);
    if (!k)
        return 0;
    uint64_t v = 0;
    for (const char *p = k + 12; p < pkt + len && *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    return v;
}

static void record_latency(uint64_t sent_ns)
{
    uint64_t now = lg_now_ns();
    if (sent_ns && now >= sent_ns)
        lg_hist_add(&g_hist, (now - sent_ns) / 1000);
    g_t_last = now;
}

static void setup_ack(lg_conn *c, long id, const char *body, size_t len)
{
    (void)c;
    (void)id;
    if (memmem(body, len, "\"ok\":true", 9)) {
        g_acks_ok++;
    } else {
        g_acks_err++;
        lg_note_error("refused: %.*s", (int)(len > 120 ? 120 : len), body);
    }
}

static void count_chat_error(lg_conn *c, const char *name, size_t nl, const char *pkt, size_t len)
{
    (void)c;
    if (is(name, nl, "chat:error")) {
        g_chat_errors++;
        lg_note_error("chat:error %.*s", (int)(len > 120 ? 120 : len), pkt);
    }
}

/* Connects conns [from, to) and waits until each is ready or failed. */
static int connect_range(uint32_t to, double *secs)
{
    uint64_t t0 = lg_now_ns();
    while (lg.ready + lg.failed < to) {
        if (lg_now_ns() >= lg_deadline_ns) {
            lg_note_error("timeout while connecting (%llu of %u ready)", (unsigned long long)lg.ready, to);
            return -ETIMEDOUT;
        }
        lg_pump(to);
        lg_poll_once(5);
    }
    if (secs)
        *secs = (double)(lg_now_ns() - t0) / 1e9;
    if (lg.failed) {
        lg_note_error("%llu connections failed", (unsigned long long)lg.failed);
        return -ECONNREFUSED;
    }
    return 0;
}

/* Runs the loop until *ctr >= goal; the timeout is noted as the error. */
static int wait_for(const uint64_t *ctr, uint64_t goal, const char *what)
{
    int r = lg_run_until(ctr, goal, lg.n_started, lg_deadline_ns);
    if (r != 0)
        lg_note_error("timeout waiting for %s (%llu of %llu)", what, (unsigned long long)*ctr,
                      (unsigned long long)goal);
    if (g_acks_err && r == 0)
        return -EPROTO;
    return r;
}

static void run_for_ms(int ms)
{
    uint64_t end = lg_now_ns() + (uint64_t)ms * 1000000ull;
    while (lg_now_ns() < end)
        lg_poll_once(5);
}

/* user:join every conn [0, n) as "<prefix><idx>", then wait for the acks. */
static int join_all(uint32_t n, const char *prefix)
{
    uint64_t goal = g_acks_ok + n;
    for (uint32_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s%u", prefix, i);
        emit_str(&lg.conns[i], ACK_SETUP, "user:join", name);
    }
    return wait_for(&g_acks_ok, goal, "user:join acks");
}

static uint64_t g_mb0, g_mt0;

static void machine_begin(void)
{
    lg_machine_cpu(&g_mb0, &g_mt0);
}

/* Busy share of the whole machine (all cores) since machine_begin, in %. */
static void report_machine(void)
{
    uint64_t b, t;
    if (lg_machine_cpu(&b, &t) == 0 && t > g_mt0)
        lg_report("machine_busy_pct", "machine busy, all cores (%)", "%.0f",
                  (double)(b - g_mb0) * 100.0 / (double)(t - g_mt0));
}

static void report_latency(void)
{
    lg_report("p50_ms", "latency p50 (ms)", "%.3f", lg_hist_quantile(&g_hist, 0.50) / 1000.0);
    lg_report("p99_ms", "latency p99 (ms)", "%.3f", lg_hist_quantile(&g_hist, 0.99) / 1000.0);
    lg_report("p999_ms", "latency p99.9 (ms)", "%.3f", lg_hist_quantile(&g_hist, 0.999) / 1000.0);
    lg_report("max_ms", "latency max (ms)", "%.3f", (double)g_hist.max_us / 1000.0);
    if (g_o->cdf_path && lg_hist_write_cdf(&g_hist, g_o->cdf_path) != 0)
        fprintf(stderr, "loadgen: cannot write %s\n", g_o->cdf_path);
}

/* ---- join-storm ------------------------------------------------------------------ */

#define F_USERS 1u
#define F_ROOMS 2u

static uint64_t g_js_total; /* users expected in the final state */

static void js_event(lg_conn *c, const char *name, size_t nl, const char *pkt, size_t len)
{
    if (c->idx == 0 || c->flags == (F_USERS | F_ROOMS)) {
        count_chat_error(c, name, nl, pkt, len);
        return;
    }
    if (is(name, nl, "users:update")) {
        uint64_t users = 0; /* one object per user; names hold no '{' */
        for (const char *p = pkt; (p = memchr(p, '{', len - (size_t)(p - pkt))) != NULL; p++)
            users++;
        if (users >= g_js_total)
            c->flags |= F_USERS;
    } else if (is(name, nl, "rooms:update")) {
        /* {"name":"<room>","users":N} among every room of the server */
        char key[96];
        int kl = snprintf(key, sizeof key, "\"name\":\"%s\",\"users\":", g_o->room);
        const char *k = memmem(pkt, len, key, (size_t)kl);
        if (k && strtoull(k + kl, NULL, 10) >= g_js_total)
            c->flags |= F_ROOMS;
    } else {
        count_chat_error(c, name, nl, pkt, len);
        return;
    }
    if (c->flags == (F_USERS | F_ROOMS)) {
        uint64_t now = lg_now_ns();
        lg_hist_add(&g_hist, (now - c->t_ns) / 1000);
        g_t_last = now;
        g_done++;
    }
}

int lg_join_storm(const lg_opts *o)
{
    uint32_t n = o->conns, total = n + 1; /* conn 0 owns the room */
    double connect_s = 0;
    int r;

    g_o = o;
    if ((r = lg_init(total)) != 0)
        return fprintf(stderr, "loadgen: init: %s\n", strerror(-r)), 1;
    lg.ops.on_ack = setup_ack;
    lg.ops.on_event = js_event;
    g_js_total = total;

    if ((r = connect_range(1, NULL)) != 0)
        goto report;
    emit_str(&lg.conns[0], ACK_SETUP, "user:join", "owner");
    emit_str(&lg.conns[0], ACK_SETUP, "room:create", o->room);
    if ((r = wait_for(&g_acks_ok, 2, "room:create")) != 0)
        goto report;
    if ((r = connect_range(total, &connect_s)) != 0)
        goto report;
    run_for_ms(300); /* the owner's presence updates go out first */

    machine_begin();
    int64_t c0 = lg_servers_cpu_us(), l0 = lg_self_cpu_us();
    uint64_t t0 = lg_now_ns();
    for (uint32_t i = 1; i < total; i++) {
        char name[32];
        lg_conn *c = &lg.conns[i];
        c->t_ns = t0;
        snprintf(name, sizeof name, "s%u", i);
        emit_str(c, ACK_SETUP, "user:join", name);
        emit_str(c, ACK_SETUP, "room:join", o->room);
    }
    r = wait_for(&g_done, n, "final users:update and rooms:update");
    if (r == 0)
        r = wait_for(&g_acks_ok, 2 + 2 * (uint64_t)n, "join acks");
    int64_t c1 = lg_servers_cpu_us(), l1 = lg_self_cpu_us();
    double secs = (double)((g_done == n ? g_t_last : lg_now_ns()) - t0) / 1e9;

    lg_report_begin("join-storm", o->label);
    lg_report("users", "users joining", "%u", n);
    lg_report("connect_s", "-", "%.3f", connect_s);
    lg_report("conn_per_s", "connections per second (setup)", "%.0f", connect_s > 0 ? total / connect_s : 0);
    lg_report("storm_s", "time until all saw the final state (s)", "%.3f", secs);
    lg_report("joins_per_s", "joins per second", "%.0f", secs > 0 ? n / secs : 0);
    lg_report("srv_cpu_us_per_user", "server CPU per joining user (us)", "%.1f", (double)(c1 - c0) / n);
    lg_report("p50_ms", "time to final state, median user (ms)", "%.1f", lg_hist_quantile(&g_hist, 0.5) / 1000.0);
    lg_report("lg_cpu_pct", "load generator CPU (%)", "%.0f", secs > 0 ? (double)(l1 - l0) / 1e4 / secs : 0);
    report_machine();
    lg_report("mib_in", "-", "%.1f", (double)lg.bytes_in / 1048576.0);
    return lg_report_end(r == 0 && g_done == n && !g_acks_err && !lg.dropped);
report:
    lg_report_begin("join-storm", o->label);
    lg_report("users", "users joining", "%u", n);
    return lg_report_end(false);
}

/* ---- fanout / cluster ----------------------------------------------------------- */

static void fan_send(lg_conn *c)
{
    char content[65536 + 64];
    char json[65536 + 200];
    int cl = make_content(content, sizeof content - 1, g_o->size);
    int n = snprintf(json, sizeof json, "{\"room\":\"%s\",\"content\":\"%.*s\"}", g_o->room, cl, content);
    emit(c, c->n_sent++, "message:room", json, (size_t)n);
}

static void fan_ack(lg_conn *c, long id, const char *body, size_t len)
{
    if (id >= ACK_SETUP) {
        setup_ack(c, id, body, len);
        return;
    }
    c->n_acked++;
    if (!memmem(body, len, "\"ok\":true", 9)) {
        g_acks_err++;
        lg_note_error("message:room refused: %.*s", (int)(len > 120 ? 120 : len), body);
    }
    g_acks_ok++;
    if ((uint32_t)c->n_sent < g_o->messages)
        fan_send(c);
}

static void fan_event(lg_conn *c, const char *name, size_t nl, const char *pkt, size_t len)
{
    if (is(name, nl, "message:receive")) {
        g_deliveries++;
        record_latency(content_time(pkt, len));
        return;
    }
    count_chat_error(c, name, nl, pkt, len);
}

int lg_fanout(const lg_opts *o)
{
    uint32_t total = o->receivers + o->senders;
    const char *scen = lg.n_targets > 1 ? "cluster" : "fanout";
    double connect_s = 0;
    int r;

    g_o = o;
    if ((r = lg_init(total)) != 0)
        return fprintf(stderr, "loadgen: init: %s\n", strerror(-r)), 1;
    lg.ops.on_ack = fan_ack;
    lg.ops.on_event = fan_event;
    g_expected = (uint64_t)o->senders * o->messages * total;

    /* senders are conns [0, S), receivers [S, S+R); conn 0 creates the room */
    if ((r = connect_range(total, &connect_s)) != 0)
        goto fail;
    if ((r = join_all(total, "f")) != 0)
        goto fail;
    emit_str(&lg.conns[0], ACK_SETUP, "room:create", o->room);
    if ((r = wait_for(&g_acks_ok, (uint64_t)total + 1, "room:create")) != 0)
        goto fail;
    for (uint32_t i = 1; i < total; i++)
        emit_str(&lg.conns[i], ACK_SETUP, "room:join", o->room);
    if ((r = wait_for(&g_acks_ok, 2 * (uint64_t)total, "room:join acks")) != 0)
        goto fail;
    run_for_ms(500); /* presence bursts of the setup go out before we measure */
    g_acks_ok = 0;
    uint64_t bytes0 = lg.bytes_in;

    machine_begin();
    int64_t c0 = lg_servers_cpu_us(), l0 = lg_self_cpu_us();
    uint64_t t0 = lg_now_ns();
    g_t_last = t0;
    for (uint32_t i = 0; i < o->senders; i++)
        for (uint32_t k = 0; k < o->window && k < o->messages; k++)
            fan_send(&lg.conns[i]);
    r = wait_for(&g_deliveries, g_expected, "deliveries");
    if (r == 0)
        r = wait_for(&g_acks_ok, (uint64_t)o->senders * o->messages, "message acks");
    int64_t c1 = lg_servers_cpu_us(), l1 = lg_self_cpu_us();
    double secs = (double)(g_t_last - t0) / 1e9;
    if (secs <= 0)
        secs = 1e-9;

    lg_report_begin(scen, o->label);
    lg_report("receivers", "receivers", "%u", o->receivers);
    lg_report("senders", "senders", "%u", o->senders);
    lg_report("messages", "messages per sender", "%u", o->messages);
    lg_report("window", "in flight per sender", "%u", o->window);
    lg_report("size", "content bytes", "%u", o->size);
    lg_report("targets", "-", "%d", lg.n_targets);
    lg_report("deliveries", "deliveries", "%llu", (unsigned long long)g_deliveries);
    lg_report("expected", "-", "%llu", (unsigned long long)g_expected);
    lg_report("elapsed_s", "elapsed (s)", "%.3f", secs);
    lg_report("deliveries_per_s", "deliveries per second", "%.0f", (double)g_deliveries / secs);
    lg_report("msgs_per_s", "messages sent per second", "%.0f", (double)g_acks_ok / secs);
    lg_report("srv_cpu_us_per_delivery", "server CPU per delivery (us)", "%.3f",
              g_deliveries ? (double)(c1 - c0) / (double)g_deliveries : 0);
    lg_report("srv_cpu_pct", "server CPU (%)", "%.0f", (double)(c1 - c0) / 1e4 / secs);
    report_latency();
    lg_report("lg_cpu_pct", "load generator CPU (%)", "%.0f", (double)(l1 - l0) / 1e4 / secs);
    report_machine();
    lg_report("mib_in", "received (MiB)", "%.1f", (double)(lg.bytes_in - bytes0) / 1048576.0);
    return lg_report_end(r == 0 && g_deliveries == g_expected && !g_acks_err && !lg.dropped && !g_chat_errors);
fail:
    lg_report_begin(scen, o->label);
    lg_report("receivers", "receivers", "%u", o->receivers);
    lg_report("senders", "senders", "%u", o->senders);
    return lg_report_end(false);
}

/* ---- private ------------------------------------------------------------------- */

/* conns 2k ("pa<k>") and 2k+1 ("pb<k>") are a pair; a starts, b answers. */
static void pv_send(lg_conn *c, const char *content, int cl)
{
    char json[65536 + 200];
    char to[32];
    snprintf(to, sizeof to, "p%c%u", (c->idx & 1) ? 'a' : 'b', c->idx / 2);
    int n = snprintf(json, sizeof json, "{\"to\":\"%s\",\"content\":\"%.*s\"}", to, cl, content);
    emit(c, -1, "message:private", json, (size_t)n);
    c->n_sent++;
}

static void pv_start(lg_conn *c)
{
    char content[65536 + 64];
    int cl = make_content(content, sizeof content - 1, g_o->size);
    pv_send(c, content, cl);
}

static void pv_event(lg_conn *c, const char *name, size_t nl, const char *pkt, size_t len)
{
    if (!is(name, nl, "message:receive")) {
        count_chat_error(c, name, nl, pkt, len);
        return;
    }
    g_deliveries++;
    const char *f = memmem(pkt, len, "\"from\":\"p", 9);
    if (!f || f + 10 >= pkt + len)
        return;
    char from_role = f[9];
    char my_role = (c->idx & 1) ? 'b' : 'a';
    if (from_role == my_role)
        return; /* the copy of our own message */
    if (my_role == 'b') { /* echo the content back */
        const char *k = memmem(pkt, len, "\"content\":\"", 11);
        if (!k)
            return;
        const char *s = k + 11;
        const char *e = memchr(s, '"', len - (size_t)(s - pkt));
        if (e)
            pv_send(c, s, (int)(e - s));
        return;
    }
    record_latency(content_time(pkt, len));
    c->n_done++;
    g_done++;
    if ((uint32_t)c->n_done < g_o->messages)
        pv_start(c);
}

int lg_private(const lg_opts *o)
{
    uint32_t total = 2 * o->pairs;
    const char *scen = lg.polling ? "private-polling" : "private";
    double connect_s = 0;
    int r;

    g_o = o;
    if ((r = lg_init(total)) != 0)
        return fprintf(stderr, "loadgen: init: %s\n", strerror(-r)), 1;
    lg.ops.on_ack = setup_ack;
    lg.ops.on_event = pv_event;

    if ((r = connect_range(total, &connect_s)) != 0)
        goto fail;
    uint64_t goal = total;
    for (uint32_t i = 0; i < total; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%c%u", (i & 1) ? 'b' : 'a', i / 2);
        emit_str(&lg.conns[i], ACK_SETUP, "user:join", name);
    }
    if ((r = wait_for(&g_acks_ok, goal, "user:join acks")) != 0)
        goto fail;
    run_for_ms(300);
    g_deliveries = 0;

    machine_begin();
    int64_t c0 = lg_servers_cpu_us(), l0 = lg_self_cpu_us();
    uint64_t t0 = lg_now_ns();
    g_t_last = t0;
    for (uint32_t i = 0; i < total; i += 2)
        pv_start(&lg.conns[i]);
    r = wait_for(&g_done, (uint64_t)o->pairs * o->messages, "round trips");
    int64_t c1 = lg_servers_cpu_us(), l1 = lg_self_cpu_us();
    double secs = (double)(g_t_last - t0) / 1e9;
    if (secs <= 0)
        secs = 1e-9;

    lg_report_begin(scen, o->label);
    lg_report("pairs", "pairs", "%u", o->pairs);
    lg_report("messages", "round trips per pair", "%u", o->messages);
    lg_report("transport", "transport", "%s", lg.polling ? "polling" : "websocket");
    lg_report("round_trips", "round trips", "%llu", (unsigned long long)g_done);
    lg_report("elapsed_s", "elapsed (s)", "%.3f", secs);
    lg_report("rt_per_s", "round trips per second", "%.0f", (double)g_done / secs);
    lg_report("srv_cpu_us_per_rt", "server CPU per round trip (us)", "%.1f",
              g_done ? (double)(c1 - c0) / (double)g_done : 0);
    lg_report("srv_cpu_pct", "server CPU (%)", "%.0f", (double)(c1 - c0) / 1e4 / secs);
    report_latency();
    lg_report("lg_cpu_pct", "load generator CPU (%)", "%.0f", (double)(l1 - l0) / 1e4 / secs);
    report_machine();
    return lg_report_end(r == 0 && g_done == (uint64_t)o->pairs * o->messages && !lg.dropped && !g_chat_errors);
fail:
    lg_report_begin(scen, o->label);
    lg_report("pairs", "pairs", "%u", o->pairs);
    return lg_report_end(false);
}

/* Used by main before any scenario runs. */
void lg_chat_init_pad(void);
void lg_chat_init_pad(void)
{
    memset(g_pad, 'x', sizeof g_pad);
}
