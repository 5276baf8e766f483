/* MMDS, the microVM metadata service of Firecracker: a JSON data store that the host fills
 * over the API and the guest reads over HTTP at a link-local IPv4 address, through a
 * network interface that routes MMDS requests.
 *
 * Two objects:
 * - struct mmds: the data store, the MMDS version (V1, V2), IMDS compatibility and the
 *   V2 session tokens. One per process, as in Firecracker (the store belongs to the
 *   microVM, not to a device): main() makes it, fills it from --metadata and hands it to
 *   the API and the Lua host, which pass it to every VM they make (vm_config.mmds), whose
 *   network devices get it from the VMM (virtio_env.mmds). Tests make their own.
 * - struct mmds_stack: the guest-facing endpoint of one network device: ARP for the MMDS
 *   address, IPv4, a small TCP server on port 80 and the HTTP/IMDS answers. The device
 *   hands it every frame the guest sends (mmds_stack_input: consumed or not) and asks it
 *   for frames to put in the guest's receive queue (mmds_stack_output).
 *
 * Everything here runs on the control thread. Guest frames and requests are hostile
 * input: whatever they hold, they are bounds-checked, counted and dropped or answered. */
#ifndef EMBER_MMDS_H
#define EMBER_MMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#define MMDS_DATA_LIMIT 51200u        /* Firecracker's default --mmds-size-limit, bytes */
#define MMDS_DEFAULT_IPV4 0xa9fea9feu /* 169.254.169.254, host byte order */
#define MMDS_MAC \
	{ \
		0x06, 0x01, 0x23, 0x45, 0x67, 0x01 \
	}                   /* Firecracker's MMDS MAC */
#define MMDS_TTL_MAX 21600u /* seconds a V2 token may live at most */

enum mmds_version { MMDS_V1 = 1, MMDS_V2 = 2 };

/* ---- the data store (store.c) ---- */

struct mmds;

/* An empty store, V1, limit MMDS_DATA_LIMIT; NULL if memory ran out. mmds_free(NULL) is a
 * no-op. */
struct mmds *mmds_new(void);
void mmds_free(struct mmds *m);
/* Back to a fresh store: no data, V1, no IMDS compatibility, no tokens. */
void mmds_reset(struct mmds *m);

/* The version and IMDS compatibility the guest-facing answers follow. */
void mmds_configure(struct mmds *m, enum mmds_version version, bool imds_compat);
enum mmds_version mmds_version(struct mmds *m);
bool mmds_imds_compat(struct mmds *m);

/* A copy of the data store (caller deletes): -ENOENT before the first PUT, -ENOMEM. */
__attribute__((warn_unused_result)) int mmds_data_copy(struct mmds *m, cJSON **out);
/* Every function here takes the store's lock itself: the device thread serves the guest
 * from the store while the API changes it. mmds_lock is for a caller that needs several
 * calls to see one state (recursive). */
void mmds_lock(struct mmds *m);
void mmds_unlock(struct mmds *m);
/* Replace the store with `v` (ownership taken in every case). -EFBIG if its compact JSON
 * text is over the size limit (the store is then unchanged), -ENOMEM. */
__attribute__((warn_unused_result)) int mmds_set_data(struct mmds *m, cJSON *v);
/* --mmds-size-limit: the most bytes of compact JSON the store takes (default
 * MMDS_DATA_LIMIT). Set before the store is filled. */
void mmds_set_size_limit(struct mmds *m, size_t bytes);
/* --metadata FILE: the store from a JSON file. -errno with err ("metadata /x.json: ..."). */
__attribute__((warn_unused_result)) int mmds_load_file(struct mmds *m, const char *path, char *err,
	size_t errlen);

/* ---- V2 session tokens (token.c) ---- */

#define MMDS_TOKEN_LEN 43 /* 32 random bytes, base64url without padding */

/* A new token living `ttl_s` seconds (1..MMDS_TTL_MAX) from now_ns (CLOCK_MONOTONIC, or
 * the tests' clock) into out[MMDS_TOKEN_LEN + 1]. Unguessable: getrandom(2). -EIO if the
 * kernel gave no randomness, -EINVAL for a ttl out of range. */
__attribute__((warn_unused_result)) int mmds_token_new(struct mmds *m, unsigned ttl_s,
	uint64_t now_ns, char *out);
/* True if `tok` (len bytes) was made by mmds_token_new and has not expired at now_ns. */
bool mmds_token_valid(struct mmds *m, const char *tok, size_t len, uint64_t now_ns);

/* ---- one HTTP request (http.c) ---- */

struct mmds_reply {
	char *text; /* the whole HTTP response (malloc'd), or NULL */
	size_t len;
	int status; /* 200, 400, ... */
	bool close; /* the connection closes after this answer */
};

/* Look for one complete request at the start of req[0..len): 0 if more bytes are needed
 * (nothing consumed, out untouched), else the number of bytes it took, with the answer in
 * *out (free out->text with free()). A malformed request is answered 400 and closes the
 * connection. Requests: GET <path> (V2: a valid X-metadata-token needed), PUT
 * /latest/api/token with X-metadata-token-ttl-seconds; answers in IMDS text or JSON
 * (Accept: application/json, unless IMDS compatibility is on). */
size_t mmds_http_handle(struct mmds *m, const char *req, size_t len, uint64_t now_ns,
	struct mmds_reply *out);

/* ---- the per-device network endpoint (stack.c, tcp.c) ---- */

struct mmds_stack;

/* A connection the guest leaves silent this long is reset and its slot freed: without it
 * a guest could hold every slot with connections it never uses (a slot's retransmission
 * limit only ends connections with data in flight). */
#define MMDS_TCP_IDLE_TIMEOUT_NS (60 * 1000000000ull)

/* Counters, for the device's metrics: what was taken, answered, dropped and why. */
struct mmds_stats {
	uint64_t rx_frames, rx_arp, rx_tcp, rx_bad_eth, rx_bad_arp, rx_bad_ip, rx_bad_csum,
		rx_fragments, rx_not_tcp, rx_bad_tcp, rx_unexpected, rx_out_of_window, tx_frames,
		tx_bytes, tx_resets, tx_retransmits, conns_created, conns_refused, conns_closed,
		conns_timed_out, http_requests, http_errors, dropped_replies;
};

/* Each counter as "mmds_<name>" through `put` (a device's stats op). */
void mmds_stats_put(const struct mmds_stats *st,
	void (*put)(void *ctx, const char *key, uint64_t value), void *ctx);

/* An endpoint answering for `ipv4` (host byte order) with the store `m` (borrowed; it
 * must outlive the stack). NULL if memory ran out. */
struct mmds_stack *mmds_stack_new(struct mmds *m, uint32_t ipv4);
void mmds_stack_free(struct mmds_stack *s);
uint32_t mmds_stack_ipv4(const struct mmds_stack *s);
const struct mmds_stats *mmds_stack_stats(const struct mmds_stack *s);

/* A frame the guest sent (Ethernet, no virtio header). True if it was for MMDS (an ARP
 * packet asking for the MMDS address, or an IPv4 packet to it): it is consumed, answered
 * or dropped. False: not MMDS traffic, it goes on to the tap unchanged. */
bool mmds_stack_input(struct mmds_stack *s, const uint8_t *frame, size_t len, uint64_t now_ns);
/* The next frame for the guest into buf (cap >= 1514 to be useful): its length, or 0 if
 * there is nothing to send now. */
size_t mmds_stack_output(struct mmds_stack *s, uint8_t *buf, size_t cap, uint64_t now_ns);
/* When mmds_stack_tick needs to run next (ns, same clock), or 0 for never. */
uint64_t mmds_stack_deadline(const struct mmds_stack *s);
/* Timers: retransmit unacknowledged data, give up on dead and idle connections. */
void mmds_stack_tick(struct mmds_stack *s, uint64_t now_ns);
/* Forget every connection (after a restore: the guest's TCP state is not ours). */
void mmds_stack_clear(struct mmds_stack *s);

#endif
