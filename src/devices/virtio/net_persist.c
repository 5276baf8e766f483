/* virtio-net persist pair: identity, MAC and what is left in the rx/tx rate limiters. */
#include "net_internal.h"

#include <errno.h>
#include <string.h>

#include "ember/log.h"
#include "ember/snapshot_file.h"

#define STATE_VERSION 1
#define STATE_STR_MAX 4096

static int put_limiter(struct snap_writer *w, const struct rate_limiter *rl)
{
	struct rate_limiter_state s;
	int ret;

	rate_limiter_save(rl, &s);
	ret = snap_put_u64(w, (uint64_t)s.bandwidth_budget);
	if (!ret)
		ret = snap_put_u64(w, s.bandwidth_burst);
	if (!ret)
		ret = snap_put_u64(w, (uint64_t)s.ops_budget);
	if (!ret)
		ret = snap_put_u64(w, s.ops_burst);
	return ret;
}

static int get_limiter(struct snap_cursor *c, struct rate_limiter_state *s)
{
	uint64_t v[4] = { 0 };

	for (int i = 0; i < 4; i++)
		if (snap_get_u64(c, &v[i]))
			return -EINVAL;
	s->bandwidth_budget = (int64_t)v[0];
	s->bandwidth_burst = v[1];
	s->ops_budget = (int64_t)v[2];
	s->ops_burst = v[3];
	return 0;
}

/* State v1: u32 version, str id, str tap, mac[6] + u16 has_mac, rx and tx limiters
 * (4 x u64 each). No frames: in-flight packets are not saved (as Firecracker). */
int net_save(void *dev, struct snap_writer *w)
{
	const struct net_dev *n = dev;
	uint8_t mac[8] = { 0 };
	int ret;

	memcpy(mac, n->mac, 6);
	mac[6] = n->has_mac;
	ret = snap_put_u32(w, STATE_VERSION);
	if (!ret)
		ret = snap_put_str(w, n->id);
	if (!ret)
		ret = snap_put_str(w, n->tap);
	if (!ret)
		ret = snap_put(w, mac, sizeof(mac));
	if (!ret)
		ret = put_limiter(w, &n->rx_rl);
	if (!ret)
		ret = put_limiter(w, &n->tx_rl);
	return ret;
}

/* The tap was opened by name when the device was built (after network overrides); the
 * saved name is only for the record. The MAC is the one the guest knows. */
int net_restore(void *dev, struct snap_cursor *c)
{
	struct net_dev *n = dev;
	struct rate_limiter_state rx, tx;
	const char *id = NULL, *tap = NULL;
	uint8_t mac[8];
	uint32_t version = 0;

	if (snap_get_u32(c, &version) || version != STATE_VERSION ||
	    snap_get_str(c, &id, STATE_STR_MAX) || snap_get_str(c, &tap, STATE_STR_MAX) ||
	    snap_get(c, mac, sizeof(mac)) || get_limiter(c, &rx) || get_limiter(c, &tx))
		return -EINVAL;
	if (!id || strcmp(id, n->id) != 0) {
		log_err("net '%s': the snapshot holds interface '%s'", n->id, id ? id : "");
		return -EINVAL;
	}
	if (mac[6] != n->has_mac) {
		log_err("net '%s': the snapshot %s a MAC address", n->id,
			mac[6] ? "has" : "has no");
		return -EINVAL;
	}
	memcpy(n->mac, mac, 6);
	rate_limiter_restore(&n->rx_rl, &rx, net_now_ns());
	rate_limiter_restore(&n->tx_rl, &tx, net_now_ns());
	n->rx_held = false;
	return 0;
}
