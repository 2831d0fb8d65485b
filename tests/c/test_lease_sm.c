/*
 * The lease's state machine without a ZooKeeper server: a scripted registry
 * (scripted_registry.h) and the generator's injected clock. Every tick is
 * called here, time moves only when the test moves it, nothing sleeps.
 *
 * Each scenario asserts one transition of SPEC "Lease" / "Safety
 * invariants": claim and no_free_worker, marks ahead (wait, and refusal past
 * start_bound_ms), canary (fast: the watch; slow: the keep-alive), suspect
 * then expired (lost, re-claim) or suspect then an answer (canary), fence at
 * deadline - margin, outage park and resume, expiry and re-claim, the
 * quarantine write retried after reconnect, release on stop, and the
 * quarantine administration.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snowflake.h"
#include "sf_lease_sm.h"
#include "sf_record.h"
#include "check.h"
#include "scripted_registry.h"

#define ROOT       "/t/sf"
#define TICK_MS    10
#define TIMEOUT_MS 6000   /* negotiated */
#define MARGIN_MS  1500
#define LOCAL_MS   1500   /* local_ahead_ms (the default): the wait after a first claim */
#define RECLAIM_MS 5000
#define OTHER      0x777  /* another claimant's session */

typedef struct harness {
	test_clock        tc;
	sf_clock          clock;
	sf_layout         layout;
	sf_gen           *gen;
	scripted_registry sr;
	sf_lease         *lease;
	sf_lease_config   cfg;
	char              dir[64];
	char              path[256];
	char              log[32768];  /* every log line, for the assertions */
	size_t            log_used;
} harness;

static void capture_log(void *ctx, int level, const char *line)
{
	harness *h = ctx;
	int n = snprintf(h->log + h->log_used, sizeof h->log - h->log_used, "%d %s\n", level, line);

	printf("# log %d %s\n", level, line);
	if (n > 0 && (size_t)n < sizeof h->log - h->log_used)
		h->log_used += (size_t)n;
}

/* A generator on the manual clock, an empty registry that is up, a state
 * directory; the lease comes with h_lease once the test set the registry. */
static void h_init(harness *h, unsigned worker_bits)
{
	memset(h, 0, sizeof *h);
	h->tc = (test_clock){ TEST_T0_MS * TEST_MS, 1000000 * TEST_MS };
	h->clock = test_clock_make(&h->tc);
	h->layout = (sf_layout){ SF_DEFAULT_EPOCH_MS, 41, worker_bits, 22 - worker_bits };
	if (sf_gen_new(&h->layout, &h->clock, &h->gen) != SF_OK)
		abort();
	sr_init(&h->sr, TIMEOUT_MS);
	snprintf(h->dir, sizeof h->dir, "/tmp/test_lease_sm.XXXXXX");
	if (!mkdtemp(h->dir))
		abort();
	sf_lease_config_defaults(&h->cfg);
	h->cfg.zk_hosts = "scripted";
	h->cfg.root = ROOT;
	h->cfg.node_name = "test-node";
	h->cfg.state_dir = h->dir;
	h->cfg.session_timeout_ms = TIMEOUT_MS;
	h->cfg.margin_ms = MARGIN_MS;
	h->cfg.local_ahead_ms = LOCAL_MS;
	h->cfg.reclaim_delay_ms = RECLAIM_MS;
	h->cfg.log = capture_log;
	h->cfg.log_ctx = h;
	h->cfg.log_level = 7;
}

static void h_lease(harness *h)
{
	sf_registry reg = sr_registry(&h->sr);

	if (sf_lease_sm_new(h->gen, &h->cfg, &reg, &h->lease) != SF_OK)
		abort();
}

static void h_done(harness *h)
{
	DIR *d;
	struct dirent *e;

	if (h->lease)
		sf_lease_stop(h->lease);
	sf_gen_free(h->gen);
	if ((d = opendir(h->dir))) {
		while ((e = readdir(d))) {
			char p[400];

			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof p, "%s/%s", h->dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(h->dir);
}

static const char *P(harness *h, const char *kind, int id)
{
	snprintf(h->path, sizeof h->path, ROOT "/%s/%d", kind, id);
	return h->path;
}

static void h_mark(harness *h, int id, int64_t mark_ms)
{
	char buf[32];

	snprintf(buf, sizeof buf, "%lld", (long long)mark_ms);
	sr_node_set(&h->sr, P(h, "marks", id), buf, 0, false);
}

/* The registry's events arrive, then one tick of the lease. */
static void h_tick(harness *h)
{
	sr_pump(&h->sr);
	sf_lease_sm_tick(h->lease);
}

/* TICK_MS of both clocks, then a tick. */
static void h_step(harness *h)
{
	h->tc.wall_ns += TICK_MS * TEST_MS;
	h->tc.mono_ns += TICK_MS * TEST_MS;
	h_tick(h);
}

static void h_run(harness *h, int64_t ms)
{
	for (int64_t t = 0; t < ms; t += TICK_MS)
		h_step(h);
}

static sf_lease_status h_status(harness *h)
{
	sf_lease_status st;

	sf_lease_status_get(h->lease, &st);
	return st;
}

/* Steps until the lease is in state with reason (reason 1: any), at most
 * max_ms; returns the ms it took, or -1. */
static int64_t h_until(harness *h, sf_lease_state state, int reason, int64_t max_ms)
{
	for (int64_t t = 0; t <= max_ms; t += TICK_MS) {
		sf_lease_status st = h_status(h);

		if (st.state == state && (reason == 1 || st.reason == reason))
			return t;
		h_step(h);
	}
	return -1;
}

static int h_mint(harness *h, int64_t *id)
{
	int64_t scratch;

	return sf_next(h->gen, id ? id : &scratch, NULL);
}

static int32_t id_worker(harness *h, int64_t id)
{
	sf_decoded d;

	return sf_id_decode(&h->layout, id, &d) == SF_OK ? (int32_t)d.worker : -1;
}

/* Start and run until minting; returns the worker. */
static int32_t h_minting(harness *h)
{
	h_lease(h);
	if (h_until(h, SF_LEASE_MINTING, SF_OK, 5000) < 0) {
		CHECK(false, "the lease reaches minting");
		return -1;
	}
	return h_status(h).worker;
}

/* ---- claim ----------------------------------------------------------- */

static void test_claim(void)
{
	harness h;
	sf_lease_status st;
	sr_conn *c;
	int64_t id, mark;

	h_init(&h, 2);
	sr_node_set(&h.sr, P(&h, "workers", 0), "{}", OTHER, false); /* held by someone */
	sr_node_set(&h.sr, P(&h, "quarantine", 1), "{}", 0, false);
	h_mark(&h, 2, TEST_T0_MS - 100000);  /* the oldest mark of the free IDs */
	h_mark(&h, 3, TEST_T0_MS - 50000);
	h_lease(&h);

	st = h_status(&h);
	CHECK(st.state == SF_LEASE_CONNECTING && st.reason == SF_E_NO_LEASE && st.worker == -1,
	      "claim: a new lease is connecting, no_lease");
	CHECK_RC(h_mint(&h, NULL), SF_E_NO_LEASE, "claim: no minting before a claim");
	h_tick(&h); /* opens the session */
	h_tick(&h); /* hears it is connected: claims */
	st = h_status(&h);
	c = sr_lease_conn(&h.sr);
	CHECK(st.worker == 2, "claim: the free, non-quarantined ID with the oldest mark is claimed (got %d)",
	      (int)st.worker);
	CHECK(st.state == SF_LEASE_WAITING && st.reason == SF_E_CLOCK_WAIT,
	      "claim: then it waits past the local mark (%s, %s)", sf_lease_state_name(st.state),
	      sf_code_name(st.reason));
	CHECK(c && sr_find(&h.sr, P(&h, "workers", 2)) && sr_find(&h.sr, P(&h, "workers", 2))->owner == c->session_id,
	      "claim: workers/2 is an ephemeral node of the lease's session");
	CHECK(sr_find(&h.sr, P(&h, "workers", 0))->owner == OTHER, "claim: the other holder's node is untouched");
	CHECK(st.claims == 1 && st.sessions == 1, "claim: one session, one claim");
	CHECK_RC(h_mint(&h, NULL), SF_E_NO_LEASE, "claim: no minting while waiting");

	CHECK(h_until(&h, SF_LEASE_MINTING, SF_OK, LOCAL_MS + 500) >= 0, "claim: minting after the wait");
	st = h_status(&h);
	CHECK_RC(h_mint(&h, &id), SF_OK, "claim: mints");
	CHECK(id_worker(&h, id) == 2, "claim: with worker 2");
	mark = sr_mark(&h.sr, P(&h, "marks", 2));
	CHECK(mark >= h.tc.wall_ns / TEST_MS + 2 * TIMEOUT_MS - 2 * TICK_MS,
	      "claim: the registry mark is written two timeouts ahead before minting (%lld ms ahead)",
	      (long long)(mark - h.tc.wall_ns / TEST_MS));
	CHECK(sf_gen_ceiling_get(h.gen, SF_CEILING_REGISTRY) == mark,
	      "claim: the generator never mints past the registry mark");
	CHECK(st.lease_ms_left > 0 && st.lease_ms_left <= TIMEOUT_MS - MARGIN_MS,
	      "claim: lease time left is reported (%lld ms)", (long long)st.lease_ms_left);
	h_done(&h);
}

static void test_no_free_worker(void)
{
	harness h;
	sf_lease_status st;

	h_init(&h, 1);
	sr_node_set(&h.sr, P(&h, "workers", 0), "{}", OTHER, false);
	sr_node_set(&h.sr, P(&h, "quarantine", 1), "{}", 0, false);
	h_lease(&h);
	h_tick(&h);
	h_tick(&h);
	st = h_status(&h);
	CHECK(st.state == SF_LEASE_PARKED && st.reason == SF_E_NO_FREE_WORKER && st.worker == -1,
	      "no_free_worker: every ID taken or quarantined parks the node (%s, %s)",
	      sf_lease_state_name(st.state), sf_code_name(st.reason));
	CHECK(strstr(st.detail, "all 2 worker IDs") != NULL, "no_free_worker: the detail says so: %s", st.detail);
	CHECK_RC(h_mint(&h, NULL), SF_E_NO_LEASE, "no_free_worker: refuses no_lease");
	CHECK(!sr_find(&h.sr, P(&h, "workers", 1)), "no_free_worker: the quarantined ID is not claimed");

	/* an operator clears the quarantine: claimed again after reclaim_delay */
	sr_node_delete(&h.sr, P(&h, "quarantine", 1), false);
	h_run(&h, RECLAIM_MS - 100);
	st = h_status(&h);
	CHECK(st.claims == 0 && st.reason == SF_E_NO_FREE_WORKER,
	      "no_free_worker: no new claim before lease.reclaim_delay_ms");
	h_run(&h, 200);
	st = h_status(&h);
	CHECK(st.claims == 1 && st.worker == 1, "no_free_worker: the freed ID is claimed after the delay (worker %d)",
	      (int)st.worker);
	h_done(&h);
}

/* ---- marks ahead ----------------------------------------------------- */

static void test_marks_ahead(void)
{
	harness h;
	sf_lease_status st;
	const int64_t mark = TEST_T0_MS + LOCAL_MS + 2000;
	sf_decoded d;
	int64_t id;
	bool early = false;

	h_init(&h, 1);
	sr_node_set(&h.sr, P(&h, "workers", 0), "{}", OTHER, false);
	h_mark(&h, 1, mark);
	h_lease(&h);
	h_tick(&h);
	h_tick(&h);
	st = h_status(&h);
	CHECK(st.worker == 1 && st.state == SF_LEASE_WAITING && st.reason == SF_E_CLOCK_WAIT,
	      "marks ahead: the ID is held and the node waits (clock_wait)");
	CHECK(st.mint_ready_unix_ms > mark && st.mint_ready_unix_ms <= mark + 2,
	      "marks ahead: it says when it can mint (%lld ms after the mark)",
	      (long long)(st.mint_ready_unix_ms - mark));
	while (h.tc.wall_ns / TEST_MS < mark) {
		h_step(&h);
		early |= h_mint(&h, NULL) == SF_OK || h_status(&h).state == SF_LEASE_MINTING;
	}
	CHECK(!early, "marks ahead: nothing is minted while the clock is at or below the registry mark");
	CHECK(h_until(&h, SF_LEASE_MINTING, SF_OK, 500) >= 0, "marks ahead: minting once the clock passed it");
	CHECK_RC(h_mint(&h, &id), SF_OK, "marks ahead: mints");
	sf_id_decode(&h.layout, id, &d);
	CHECK(d.timestamp_ms > mark, "marks ahead: the first ID lies above the mark (+%lld ms)",
	      (long long)(d.timestamp_ms - mark));
	h_done(&h);

	/* beyond lease.start_bound_ms: refused, said why, the ID let go */
	h_init(&h, 1);
	sr_node_set(&h.sr, P(&h, "workers", 0), "{}", OTHER, false);
	h_mark(&h, 1, TEST_T0_MS + h.cfg.start_bound_ms + 10000);
	h_lease(&h);
	h_tick(&h);
	h_tick(&h);
	st = h_status(&h);
	CHECK(st.state == SF_LEASE_PARKED && st.reason == SF_E_REGISTRY_HWM_AHEAD && st.worker == -1,
	      "marks ahead: a registry mark past start_bound_ms is refused (%s, %s)",
	      sf_lease_state_name(st.state), sf_code_name(st.reason));
	CHECK(strstr(h.log, "registry mark is 40000 ms ahead") != NULL,
	      "marks ahead: the log says which mark and how far ahead");
	CHECK_RC(h_mint(&h, NULL), SF_E_REGISTRY_HWM_AHEAD, "marks ahead: minting refuses registry_hwm_ahead");
	CHECK(!sr_find(&h.sr, P(&h, "workers", 1)), "marks ahead: the refused ID's node is released");
	CHECK(sr_mark(&h.sr, P(&h, "marks", 1)) == TEST_T0_MS + 40000,
	      "marks ahead: someone else's mark is left as it is");
	h_done(&h);
}

/* ---- canary ---------------------------------------------------------- */

static void test_canary_watch(void)
{
	harness h;
	sf_lease_status st;
	sr_node *q;
	int32_t w;
	int64_t first_id = -1, last_id = -1;

	h_init(&h, 1);
	sr_node_set(&h.sr, P(&h, "workers", 0), "{}", OTHER, false);
	w = h_minting(&h);
	CHECK(w == 1, "canary: minting as worker 1");
	h_run(&h, 500);
	CHECK_RC(h_mint(&h, &first_id), SF_OK, "canary: mints while the lease is provably alive");
	h_run(&h, 20);
	for (int i = 0; i < 5; i++)
		h_mint(&h, &last_id);

	/* someone else deletes our node while our session is provably alive */
	sr_node_delete(&h.sr, P(&h, "workers", 1), true);
	sr_pump(&h.sr); /* the watch fires on the registry's thread */
	CHECK_RC(h_mint(&h, NULL), SF_E_QUARANTINED, "canary: minting stops at the event, before any tick");
	CHECK(!atomic_load(&h.lease->s->suspect), "canary: a provably alive lease makes it a canary, not a suspect");
	h_tick(&h);
	st = h_status(&h);
	CHECK(st.state == SF_LEASE_PARKED && st.reason == SF_E_QUARANTINED && st.worker == -1,
	      "canary: parked, quarantined (%s, %s)", sf_lease_state_name(st.state), sf_code_name(st.reason));
	CHECK(st.canaries == 1, "canary: counted");
	q = sr_find(&h.sr, P(&h, "quarantine", 1));
	CHECK(q && strstr(q->data, "\"why\":\"lease node vanished") && strstr(q->data, "\"node\":\"test-node\""),
	      "canary: quarantine/1 written, saying who and why: %s", q ? q->data : "(none)");
	CHECK(strstr(h.log, "CANARY worker 1") != NULL, "canary: logged as CANARY");
	{
		sf_quarantine_record rec;

		CHECK(q && sf_record_quarantine_parse(q->data, (size_t)q->len, &rec) == SF_OK && rec.has_window &&
		      rec.first_id <= first_id && rec.last_id >= last_id && id_worker(&h, rec.first_id) == 1 &&
		      id_worker(&h, rec.last_id) == 1,
		      "canary: the record's audit window holds every ID minted (%" PRId64 "..%" PRId64 ")",
		      first_id, last_id);
	}
	h_run(&h, RECLAIM_MS + 500);
	st = h_status(&h);
	CHECK(st.claims == 1 && st.reason == SF_E_NO_FREE_WORKER && !sr_find(&h.sr, P(&h, "workers", 1)),
	      "canary: the quarantined ID is never claimed again (%s)", sf_code_name(st.reason));
	CHECK_RC(h_mint(&h, NULL), SF_E_QUARANTINED, "canary: still refusing quarantined");
	h_done(&h);
}

static void test_canary_keepalive(void)
{
	harness h;
	sf_lease_status st;
	int32_t w;
	unsigned pings;

	h_init(&h, 1);
	sr_node_set(&h.sr, P(&h, "workers", 0), "{}", OTHER, false);
	w = h_minting(&h);
	h_run(&h, 1500);
	pings = h.sr.pings;
	CHECK(pings >= 1, "slow canary: keep-alive pings go out (%u)", pings);
	/* our node replaced by another session's, without our watch firing */
	sr_node_set(&h.sr, P(&h, "workers", w), "{}", 0x999, false);
	CHECK(h_until(&h, SF_LEASE_PARKED, SF_E_QUARANTINED, 1500) >= 0,
	      "slow canary: the keep-alive's answer (another owner) parks the node");
	st = h_status(&h);
	CHECK(st.canaries == 1 && sr_find(&h.sr, P(&h, "quarantine", w)), "slow canary: quarantined");
	CHECK(strstr(h.log, "seen 0x999") != NULL, "slow canary: the log names the owner it saw");
	CHECK(sr_find(&h.sr, P(&h, "workers", w))->owner == 0x999, "slow canary: the other owner's node is not deleted");
	h_done(&h);
}

/* ---- suspect --------------------------------------------------------- */

/* Minting as worker 0 (marks make the claim order 0, 1, 2, 3), then an
 * outage long enough that the lease is no longer provably alive. */
static void suspect_setup(harness *h)
{
	h_init(h, 2);
	for (int i = 0; i < 4; i++)
		h_mark(h, i, TEST_T0_MS - 4000 + 1000 * i);
	CHECK(h_minting(h) == 0, "suspect: minting as worker 0");
	h_run(h, 1000);
	sr_outage(&h->sr);
	CHECK(h_until(h, SF_LEASE_PARKED, SF_E_FENCED, TIMEOUT_MS) >= 0, "suspect: fenced in the outage");
	h_run(h, MARGIN_MS + 500); /* past ack + timeout: the server may have expired us */
}

static void test_suspect_expired(void)
{
	harness h;
	sf_lease_status st;
	int64_t before, after;
	sr_conn *c;
	bool minted = false;

	suspect_setup(&h);
	c = sr_lease_conn(&h.sr);
	CHECK(sf_gen_last_ms(h.gen) > 0, "suspect: IDs were minted before");
	before = sf_gen_last_ms(h.gen);
	/* after our pause the DELETED event comes before EXPIRED */
	sr_expire(&h.sr, c, true);
	sr_pump(&h.sr);
	CHECK(atomic_load(&h.lease->s->suspect) && !atomic_load(&h.lease->s->canary),
	      "suspect: the node gone while the lease is not provably alive is a suspect, not a canary");
	CHECK_RC(h_mint(&h, NULL), SF_E_NO_LEASE, "suspect: refuses no_lease");
	h_run(&h, 1000);
	st = h_status(&h);
	CHECK(st.state == SF_LEASE_PARKED && st.canaries == 0 && !sr_find(&h.sr, P(&h, "quarantine", 0)),
	      "suspect: parked, no quarantine written on a suspicion");

	sr_restore(&h.sr); /* the client learns the session expired */
	h_tick(&h);
	st = h_status(&h);
	CHECK(st.state == SF_LEASE_CONNECTING && st.worker == -1 && st.reason == SF_E_NO_LEASE,
	      "suspect: expired: the lease is lost, a new session is opened (%s)", sf_lease_state_name(st.state));
	for (int t = 0; t < 2000 && h_status(&h).state != SF_LEASE_MINTING; t += TICK_MS) {
		h_step(&h);
		minted |= h_status(&h).state != SF_LEASE_MINTING && h_mint(&h, NULL) == SF_OK;
	}
	st = h_status(&h);
	CHECK(!minted, "suspect: nothing minted between the expiry and the new claim");
	CHECK(st.state == SF_LEASE_MINTING && st.sessions == 2 && st.claims == 2,
	      "suspect: re-claimed on a new session and minting (%s, sessions %llu, claims %llu)",
	      sf_lease_state_name(st.state), (unsigned long long)st.sessions, (unsigned long long)st.claims);
	CHECK(st.worker == 1, "suspect: the new claim takes the ID with the oldest mark, not ours (worker %d)",
	      (int)st.worker);
	CHECK_RC(h_mint(&h, &after), SF_OK, "suspect: mints again");
	CHECK(sf_gen_last_ms(h.gen) > before, "suspect: IDs after lie above the IDs before");
	CHECK(st.canaries == 0, "suspect: no canary");
	h_done(&h);
}

static void test_suspect_canary(void)
{
	harness h;
	sf_lease_status st;
	bool minted = false;
	int64_t t;

	suspect_setup(&h);
	/* someone deletes our node while we cannot prove our lease alive */
	sr_node_delete(&h.sr, P(&h, "workers", 0), true);
	sr_pump(&h.sr);
	CHECK(atomic_load(&h.lease->s->suspect) && !atomic_load(&h.lease->s->canary),
	      "suspect then canary: first a suspect");
	CHECK(h.sr.creates_tried == 0, "suspect then canary: nothing quarantined yet");

	sr_restore(&h.sr); /* the same session answers again: not expired */
	for (t = 0; t < 4000 && h_status(&h).reason != SF_E_QUARANTINED; t += TICK_MS) {
		h_step(&h);
		minted |= h_mint(&h, NULL) == SF_OK;
	}
	st = h_status(&h);
	CHECK(!minted, "suspect then canary: nothing minted once the session answers");
	CHECK(st.state == SF_LEASE_PARKED && st.reason == SF_E_QUARANTINED && st.canaries == 1,
	      "suspect then canary: an answer on the same session makes it a canary (%lld ms)", (long long)t);
	CHECK(sr_find(&h.sr, P(&h, "quarantine", 0)) != NULL, "suspect then canary: quarantine/0 written");
	CHECK(st.sessions == 1, "suspect then canary: on the same session");
	h_done(&h);
}

/* ---- fence ----------------------------------------------------------- */

static void test_fence(void)
{
	harness h;
	sf_lease_status st;
	int64_t deadline, ack, fence_ok = 0;
	int32_t worker;
	bool early = false;

	h_init(&h, 1);
	sr_node_set(&h.sr, P(&h, "workers", 0), "{}", OTHER, false);
	h_minting(&h);
	h_run(&h, 2000);
	/* the server stops answering; the client still believes it is connected */
	h.sr.hold = true;
	h_run(&h, 100);
	ack = atomic_load(&h.lease->s->ack_send_ns);
	sf_gen_grant_get(h.gen, &worker, &deadline, NULL);
	CHECK(deadline == ack + (TIMEOUT_MS - MARGIN_MS) * TEST_MS,
	      "fence: the grant ends at the last acknowledged send + timeout - margin");
	CHECK(ack % TEST_MS == 0 && h.tc.mono_ns - ack <= (TIMEOUT_MS / 6 + 100 + TICK_MS) * TEST_MS,
	      "fence: the last ack is the send time of a recent request (%lld ms ago)",
	      (long long)((h.tc.mono_ns - ack) / TEST_MS));
	while (h.tc.mono_ns + TICK_MS * TEST_MS < deadline) {
		h_step(&h);
		if (h_mint(&h, NULL) != SF_OK || h_status(&h).state != SF_LEASE_MINTING)
			early = true;
		else
			fence_ok = h.tc.mono_ns;
	}
	CHECK(!early && fence_ok == deadline - TICK_MS * TEST_MS, "fence: minting goes on until the last tick before it");
	h.tc.mono_ns = deadline - 1;
	h.tc.wall_ns += TEST_MS;
	CHECK_RC(h_mint(&h, NULL), SF_OK, "fence: mints 1 ns before deadline - margin");
	h.tc.mono_ns = deadline;
	h.tc.wall_ns += TEST_MS;
	CHECK_RC(h_mint(&h, NULL), SF_E_FENCED, "fence: refuses fenced at deadline - margin, before any tick");
	h_tick(&h);
	st = h_status(&h);
	CHECK(st.state == SF_LEASE_PARKED && st.reason == SF_E_FENCED && st.lease_ms_left == 0,
	      "fence: the lease parks fenced (%s, %s)", sf_lease_state_name(st.state), sf_code_name(st.reason));
	CHECK(deadline + MARGIN_MS * TEST_MS == ack + TIMEOUT_MS * TEST_MS,
	      "fence: minting stopped margin_ms before the server could expire the session");
	{
		/* the log alone tells a history checker the window: when minting began, and the fence */
		char want[160];
		char minting_want[64];
		const char *minting;
		long long since_ms = -1;

		snprintf(minting_want, sizeof minting_want, "lease state=minting worker=%d reason=ok pid=", (int)worker);
		minting = strstr(h.log, minting_want);
		snprintf(want, sizeof want, "lease state=parked worker=%d reason=fenced pid=%ld mono_ms=%lld fence_mono_ms=%lld: ",
		         (int)worker, (long)getpid(), (long long)(h.tc.mono_ns / TEST_MS), (long long)(deadline / TEST_MS));
		CHECK(strstr(h.log, want) != NULL, "fence: the parked line names pid, mono_ms and the fence it held (%s)", want);
		if (minting)
			sscanf(strstr(minting, "mono_ms="), "mono_ms=%lld", &since_ms);
		CHECK(minting && since_ms > 0 && since_ms <= ack / TEST_MS,
		      "fence: the minting line names its start on the monotonic clock (%lld ms, before the last ack)", since_ms);
	}
	/* a wall-clock step never extends a lease */
	h.tc.wall_ns -= 3600 * 1000 * TEST_MS;
	h_tick(&h);
	h.tc.wall_ns += 2 * 3600 * 1000 * TEST_MS;
	h_tick(&h);
	CHECK(h_mint(&h, NULL) != SF_OK && h_status(&h).reason == SF_E_FENCED,
	      "fence: wall-clock steps either way do not reopen it");
	h_done(&h);
}

/* ---- outage ---------------------------------------------------------- */

static void test_outage_resume(void)
{
	harness h;
	sf_lease_status st;
	int64_t id, last = 0, parked_after;
	int32_t w;
	bool blip_ok = true;

	h_init(&h, 1);
	sr_node_set(&h.sr, P(&h, "workers", 0), "{}", OTHER, false);
	w = h_minting(&h);
	h_run(&h, 2000);
	sr_outage(&h.sr);
	for (int t = 0; t < 1000; t += TICK_MS) {
		h_step(&h);
		if (h_mint(&h, &id) != SF_OK)
			blip_ok = false;
		else
			last = id;
	}
	CHECK(blip_ok && h_status(&h).state == SF_LEASE_MINTING,
	      "outage: a short blip costs nothing, minting goes on");
	parked_after = h_until(&h, SF_LEASE_PARKED, SF_E_FENCED, TIMEOUT_MS);
	CHECK(parked_after >= 0 && parked_after + 1000 <= TIMEOUT_MS - MARGIN_MS,
	      "outage: parked fenced within timeout - margin of the last ack (%lld ms more)",
	      (long long)parked_after);
	CHECK_RC(h_mint(&h, NULL), SF_E_FENCED, "outage: refuses fenced");
	h_run(&h, 3000);
	CHECK(h_status(&h).state == SF_LEASE_PARKED, "outage: stays parked while the registry is away");

	sr_restore(&h.sr);
	CHECK(h_until(&h, SF_LEASE_MINTING, SF_OK, 2000) >= 0, "outage: resumes when the registry returns");
	st = h_status(&h);
	CHECK(st.worker == w && st.sessions == 1 && st.claims == 1,
	      "outage: on the same session and worker ID, without a restart");
	CHECK_RC(h_mint(&h, &id), SF_OK, "outage: mints again");
	CHECK(id > last && id_worker(&h, id) == w, "outage: above every earlier ID");
	h_done(&h);
}

/* ---- expiry ---------------------------------------------------------- */

static void test_expiry_reclaim(void)
{
	harness h;
	sf_lease_status st;
	int64_t before, id;

	h_init(&h, 2);
	for (int i = 0; i < 4; i++)
		h_mark(&h, i, TEST_T0_MS - 4000 + 1000 * i);
	CHECK(h_minting(&h) == 0, "expiry: minting as worker 0");
	h_run(&h, 1000);
	CHECK_RC(h_mint(&h, &before), SF_OK, "expiry: mints");
	sr_expire(&h.sr, sr_lease_conn(&h.sr), false);
	h_tick(&h);
	st = h_status(&h);
	CHECK(st.state == SF_LEASE_CONNECTING && st.reason == SF_E_NO_LEASE && st.worker == -1,
	      "expiry: the session expired: no lease (%s, %s)", sf_lease_state_name(st.state), sf_code_name(st.reason));
	CHECK_RC(h_mint(&h, NULL), SF_E_NO_LEASE, "expiry: refuses no_lease at once");
	CHECK(strstr(h.log, "expired") != NULL, "expiry: logged");
	CHECK(h_until(&h, SF_LEASE_MINTING, SF_OK, 2000) >= 0, "expiry: a new session re-claims and mints");
	st = h_status(&h);
	CHECK(st.sessions == 2 && st.claims == 2 && st.worker == 1,
	      "expiry: new session, new claim, the ID with the oldest mark (worker %d)", (int)st.worker);
	CHECK(sr_mark(&h.sr, P(&h, "marks", 0)) > TEST_T0_MS + 2 * TIMEOUT_MS,
	      "expiry: the old ID keeps the mark written ahead for it");
	CHECK_RC(h_mint(&h, &id), SF_OK, "expiry: mints");
	CHECK(id > before && id_worker(&h, id) == 1, "expiry: with the new worker, above the IDs before");
	h_done(&h);
}

/* ---- quarantine write retried ---------------------------------------- */

static void test_quarantine_retry(void)
{
	harness h;
	sf_lease_status st;
	sr_node *q;
	int32_t w;

	h_init(&h, 1);
	sr_node_set(&h.sr, P(&h, "workers", 0), "{}", OTHER, false);
	w = h_minting(&h);
	h_run(&h, 500);
	/* our node deleted by someone, and the connection drops before the
	 * client notices: the quarantine write is tried and fails */
	sr_node_delete(&h.sr, P(&h, "workers", w), true);
	h.sr.up = false;
	h_tick(&h);
	st = h_status(&h);
	CHECK(st.state == SF_LEASE_PARKED && st.reason == SF_E_QUARANTINED, "quarantine retry: parked by the canary");
	CHECK(h.sr.creates_tried == 1 && !sr_find(&h.sr, P(&h, "quarantine", w)),
	      "quarantine retry: the first write failed in the outage (%u tried)", h.sr.creates_tried);
	sr_outage(&h.sr); /* the client notices */
	h_run(&h, 3000);
	CHECK(h.sr.creates_tried == 1, "quarantine retry: not retried while disconnected (%u)", h.sr.creates_tried);
	CHECK_RC(h_mint(&h, NULL), SF_E_QUARANTINED, "quarantine retry: refusing throughout");
	sr_restore(&h.sr);
	h.sr.fail_creates = 1; /* and the first try after the reconnect fails too */
	h_tick(&h);
	CHECK(h.sr.creates_tried == 2 && !sr_find(&h.sr, P(&h, "quarantine", w)),
	      "quarantine retry: retried on reconnect; that one fails too");
	h_step(&h);
	q = sr_find(&h.sr, P(&h, "quarantine", w));
	CHECK(q != NULL && h.sr.creates_tried == 3, "quarantine retry: retried again and it lands (%u tries)",
	      h.sr.creates_tried);
	CHECK(strstr(h.log, "quarantined under " ROOT "/quarantine") != NULL, "quarantine retry: logged once written");
	h_run(&h, 1000);
	CHECK(h.sr.creates_tried == 3, "quarantine retry: written once, not again");
	h_done(&h);
}

/* ---- release on stop ------------------------------------------------- */

static void test_release(void)
{
	harness h;
	int32_t w;
	int64_t issued;

	h_init(&h, 1);
	sr_node_set(&h.sr, P(&h, "workers", 0), "{}", OTHER, false);
	w = h_minting(&h);
	h_run(&h, 500);
	CHECK_RC(h_mint(&h, NULL), SF_OK, "release: mints");
	issued = sf_gen_last_ms(h.gen);
	CHECK(sr_mark(&h.sr, P(&h, "marks", w)) > issued + TIMEOUT_MS, "release: the registry mark is far ahead while minting");
	sf_lease_stop(h.lease);
	h.lease = NULL;
	CHECK(!sr_find(&h.sr, P(&h, "workers", w)), "release: stop deletes the worker node");
	CHECK(sr_mark(&h.sr, P(&h, "marks", w)) == issued,
	      "release: the mark comes down to the last issued ms, so the next holder waits only past that");
	CHECK_RC(h_mint(&h, NULL), SF_E_STOPPED, "release: minting refuses stopped");
	h_done(&h);
}

/* ---- both claimants park ----------------------------------------------- */

static void test_quarantined_by_other(void)
{
	harness h;
	sf_lease_status st;
	sf_quarantine_record rec = { .node = "other-node", .host = "other-host", .pid = 42,
	                             .at_ms = TEST_T0_MS, .why = "lease node vanished" };
	char data[SF_RECORD_MAX];
	int64_t mark_before, id;
	int32_t w;

	h_init(&h, 1);
	sr_node_set(&h.sr, P(&h, "workers", 0), "{}", OTHER, false);
	w = h_minting(&h);
	h_run(&h, 500);
	CHECK_RC(h_mint(&h, &id), SF_OK, "both park: mints");
	mark_before = sr_mark(&h.sr, P(&h, "marks", w));
	sf_record_quarantine_format(data, sizeof data, &rec);
	sr_node_set(&h.sr, P(&h, "quarantine", w), data, 0, true);
	sr_pump(&h.sr); /* the watch on quarantine/<own id> fires */
	CHECK_RC(h_mint(&h, NULL), SF_E_QUARANTINED, "both park: minting stops at the event, before any tick");
	h_tick(&h);
	st = h_status(&h);
	CHECK(st.state == SF_LEASE_PARKED && st.reason == SF_E_QUARANTINED && st.worker == -1,
	      "both park: parked, quarantined (%s, %s)", sf_lease_state_name(st.state), sf_code_name(st.reason));
	CHECK(!sr_find(&h.sr, P(&h, "workers", w)), "both park: its worker node is released");
	CHECK(sr_mark(&h.sr, P(&h, "marks", w)) == mark_before,
	      "both park: the mark stays where it was (the overlap may be above what this node issued)");
	CHECK(strstr(h.log, "was quarantined under " ROOT "/quarantine/") &&
	      strstr(h.log, "by node other-node (host other-host, pid 42") && strstr(h.log, "this node issued IDs "),
	      "both park: one log line says who quarantined it and what this node issued");
	h_run(&h, RECLAIM_MS + 500);
	CHECK(h_status(&h).state == SF_LEASE_PARKED && h_status(&h).reason == SF_E_NO_FREE_WORKER,
	      "both park: it does not claim the quarantined ID again (the other is taken)");
	h_done(&h);

}

/* ---- garbage in the registry --------------------------------------------- */

static void test_garbage_marks(void)
{
	harness h;
	char huge[4001];
	int32_t w;

	memset(huge, '9', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	h_init(&h, 2);
	sr_node_set(&h.sr, P(&h, "marks", 0), "12abc", 0, false);
	sr_node_set(&h.sr, P(&h, "marks", 1), "-5", 0, false);
	sr_node_set(&h.sr, P(&h, "marks", 2), huge, 0, false);
	h_mark(&h, 3, TEST_T0_MS - 60000);
	w = h_minting(&h);
	CHECK(w == 3, "garbage marks: the only ID with a readable mark is claimed (%d)", w);
	CHECK(strstr(h.log, ROOT "/marks/0 is not a mark (5 bytes: \"12abc\"): skipping") &&
	      strstr(h.log, ROOT "/marks/1 is not a mark") && strstr(h.log, ROOT "/marks/2 is not a mark (4000 bytes"),
	      "garbage marks: each unreadable mark is logged with its path, and skipped");
	h_done(&h);

	h_init(&h, 1);
	sr_node_set(&h.sr, P(&h, "marks", 0), "", 0, false);
	sr_node_set(&h.sr, P(&h, "marks", 1), "1e9", 0, false);
	h_lease(&h);
	CHECK(h_until(&h, SF_LEASE_PARKED, SF_E_NO_FREE_WORKER, 2000) >= 0,
	      "garbage marks: with every mark unreadable it parks (no_free_worker) rather than guess");
	CHECK_RC(h_mint(&h, NULL), SF_E_NO_LEASE, "garbage marks: and never mints");
	h_done(&h);
}

static void test_mark_overwritten(void)
{
	harness h;
	int32_t w;
	int64_t m;

	h_init(&h, 1);
	w = h_minting(&h);
	h_run(&h, 200);
	sr_node_set(&h.sr, P(&h, "marks", w), "garbage", 0, true);
	h_run(&h, 20);
	m = sr_mark(&h.sr, P(&h, "marks", w));
	CHECK(strstr(h.log, "is not a mark (7 bytes: \"garbage\"): writing the mark again") && m > TEST_T0_MS,
	      "mark overwritten: logged with its path and written again (%" PRId64 ")", m);
	sr_node_set(&h.sr, P(&h, "marks", w), "5", 0, true);
	h_run(&h, 20);
	m = sr_mark(&h.sr, P(&h, "marks", w));
	CHECK(strstr(h.log, "was changed by someone else (5, ours ") && m > TEST_T0_MS,
	      "mark lowered by someone: logged and written again (%" PRId64 ")", m);
	sr_node_delete(&h.sr, P(&h, "marks", w), true);
	h_run(&h, 20);
	CHECK(strstr(h.log, "was deleted by someone else") && sr_mark(&h.sr, P(&h, "marks", w)) > TEST_T0_MS,
	      "mark deleted: logged and written again");
	CHECK_RC(h_mint(&h, NULL), SF_OK, "mark overwritten: minting goes on");
	h_done(&h);
}

static void test_odd_children(void)
{
	harness h;
	int32_t w;

	h_init(&h, 2);
	sr_node_set(&h.sr, ROOT "/workers/abc", "x", 0, false);
	sr_node_set(&h.sr, ROOT "/workers/-1", "x", 0, false);
	sr_node_set(&h.sr, ROOT "/workers/007", "x", 0, false);
	sr_node_set(&h.sr, ROOT "/workers/99999", "x", 0, false);
	sr_node_set(&h.sr, ROOT "/quarantine/01", "x", 0, false);
	sr_node_set(&h.sr, ROOT "/marks/003", "1", 0, false);
	sr_node_set(&h.sr, P(&h, "workers", 0), "not a holder record", 0, false); /* persistent */
	sr_node_set(&h.sr, P(&h, "workers", 1), "{}", OTHER, false);
	sr_node_set(&h.sr, P(&h, "workers", 2), "{}", OTHER, false);
	w = h_minting(&h);
	CHECK(w == 3, "odd children: names that are not IDs take no ID (claimed %d)", w);
	CHECK(strstr(h.log, "ignoring " ROOT "/workers/abc: not a worker ID") &&
	      strstr(h.log, "ignoring " ROOT "/workers/-1") && strstr(h.log, "ignoring " ROOT "/workers/007") &&
	      strstr(h.log, "ignoring " ROOT "/workers/99999") &&
	      strstr(h.log, "ignoring " ROOT "/quarantine/01: not a worker ID of this layout (0..3); it quarantines no ID") &&
	      strstr(h.log, "ignoring " ROOT "/marks/003"),
	      "odd children: each is logged with its path");
	CHECK(strstr(h.log, ROOT "/workers/0 is a persistent node (19 bytes: \"not a holder record\")") != NULL,
	      "odd children: a persistent node under workers/ is named, and its ID not claimed");
	h_done(&h);
}

/* ---- access control ---------------------------------------------------- */

static void test_acl(void)
{
	harness h;

	/* a root anyone may write: reported once, minting goes on */
	h_init(&h, 1);
	h.sr.world_writable = true;
	h_minting(&h);
	CHECK(strstr(h.log, "lease: " ROOT " can be changed by anyone (ACL world:anyone cdrwa)") != NULL,
	      "acl: a root anyone may write is reported at start");
	h_done(&h);

	/* ... refused under require_acl */
	h_init(&h, 1);
	h.sr.world_writable = true;
	h.cfg.require_acl = true;
	h_lease(&h);
	CHECK(h_until(&h, SF_LEASE_PARKED, SF_E_REGISTRY_ACCESS, 2000) >= 0,
	      "acl: with lease.require_acl a root anyone may write is refused (parked, registry_access)");
	CHECK(strstr(h.log, "lease.require_acl is set: not claiming") != NULL, "acl: the refusal says why");
	CHECK_RC(h_mint(&h, NULL), SF_E_NO_LEASE, "acl: and it never mints");
	h.sr.world_writable = false; /* fixed by the operator: a new session looks again */
	h_done(&h);

	/* the registry refuses our identity */
	h_init(&h, 1);
	h.sr.deny_creates = true;
	h.cfg.auth_file = "/etc/edge-snowflake/zk.auth";
	h_lease(&h);
	CHECK(h_until(&h, SF_LEASE_PARKED, SF_E_REGISTRY_ACCESS, 2000) >= 0,
	      "acl: a registry that refuses the identity: parked, registry_access");
	CHECK(strstr(h.log, "the credentials in lease.auth_file are not the identity the registry's ACL allows") != NULL,
	      "acl: the log names the problem");
	h.sr.deny_creates = false;
	CHECK(h_until(&h, SF_LEASE_MINTING, SF_OK, RECLAIM_MS + LOCAL_MS + 1000) >= 0, "acl: once allowed it claims without a restart");
	h_done(&h);
}

/* ---- quarantine administration --------------------------------------- */

static void test_admin(void)
{
	harness h;
	char buf[1024];

	h_init(&h, 1);
	h_lease(&h);
	sr_node_set(&h.sr, ROOT "/quarantine", NULL, 0, false);
	CHECK_RC(sf_lease_quarantine_list(h.lease, buf, sizeof buf), SF_OK, "admin: list with none");
	CHECK(buf[0] == '\0', "admin: lists nothing");
	sr_node_set(&h.sr, P(&h, "quarantine", 1),
	            "{\"node\":\"n1\",\"host\":\"h1\",\"pid\":7,\"at_ms\":1704067200123,\"why\":\"x\","
	            "\"first_ms\":1704067200000,\"first_id\":100,\"last_ms\":1704067200100,\"last_id\":200}", 0, false);
	CHECK_RC(sf_lease_quarantine_list(h.lease, buf, sizeof buf), SF_OK, "admin: list");
	CHECK(strcmp(buf, "1 at 2024-01-01T00:00:00.123Z by node n1 (host h1, pid 7): x; it issued IDs 100..200 "
	                  "(Unix ms 1704067200000..1704067200100)\n") == 0, "admin: one line a record: %s", buf);
	sr_node_set(&h.sr, P(&h, "quarantine", 1), "{\"why\":\"x\"}", 0, false);
	sr_node_set(&h.sr, ROOT "/quarantine/x\ty", "", 0, false);
	CHECK_RC(sf_lease_quarantine_list(h.lease, buf, sizeof buf), SF_OK, "admin: list garbage");
	CHECK(strstr(buf, "1 unreadable record (11 bytes: \"{\"why\":\"x\"}\"): the ID stays quarantined\n") &&
	      strstr(buf, "x?y not a worker ID of this layout: the lease ignores it\n"),
	      "admin: garbage is shown as such, printable: %s", buf);
	sr_node_delete(&h.sr, ROOT "/quarantine/x\ty", false);
	CHECK_RC(sf_lease_quarantine_clear(h.lease, 2), SF_E_WORKER_RANGE, "admin: clear refuses an ID outside the layout");
	CHECK_RC(sf_lease_quarantine_clear(h.lease, 1), SF_OK, "admin: clear");
	CHECK(!sr_find(&h.sr, P(&h, "quarantine", 1)), "admin: the record is gone");
	CHECK_RC(sf_lease_quarantine_clear(h.lease, 1), SF_E_NOT_FOUND, "admin: clearing again: not_found");
	h.sr.up = false;
	CHECK_RC(sf_lease_quarantine_list(h.lease, buf, sizeof buf), SF_E_REGISTRY, "admin: registry away: registry_error");
	CHECK_RC(sf_lease_quarantine_clear(h.lease, 0), SF_E_REGISTRY, "admin: clear with the registry away");
	h_done(&h);
}

int main(void)
{
	test_claim();
	test_no_free_worker();
	test_marks_ahead();
	test_canary_watch();
	test_canary_keepalive();
	test_suspect_expired();
	test_suspect_canary();
	test_fence();
	test_outage_resume();
	test_expiry_reclaim();
	test_quarantine_retry();
	test_release();
	test_quarantined_by_other();
	test_garbage_marks();
	test_mark_overwritten();
	test_odd_children();
	test_acl();
	test_admin();
	return CHECK_DONE();
}
