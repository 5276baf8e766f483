/* virtio-net persist pair: what is left in the rx/tx rate limiters and the interface's
 * MMDS configuration (not the store's data, as in Firecracker). */
#include "net_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/clock.h"
#include "ember/mmds.h"
#include "ember/snapshot_file.h"
#include "ember/virtio.h"

#define STATE_VERSION 3
#define MMDS_ON 1u
#define MMDS_IMDS_COMPAT 2u
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

/* State v3: u32 version, rx and tx limiters (4 x u64 each), then MMDS: u32 flags
 * (MMDS_ON, MMDS_IMDS_COMPAT), u32 IPv4 address, u32 MMDS version. v1 and v2 also held
 * the interface's configuration (str id, str tap, mac[6] + u16 has_mac, before the
 * limiters), which the state file's DEVICE_CONFIG section holds; v1 ends before MMDS
 * (no MMDS). No frames: in-flight packets and MMDS connections are not saved (as
 * Firecracker). */
int net_save(void *dev, struct snap_writer *w)
{
	const struct net_dev *n = dev;
	int ret;

	ret = snap_put_u32(w, STATE_VERSION);
	if (!ret)
		ret = put_limiter(w, &n->rx_rl);
	if (!ret)
		ret = put_limiter(w, &n->tx_rl);
	if (!ret)
		ret = snap_put_u32(w,
			(n->mmds ? MMDS_ON : 0) |
				(n->mmds && n->mmds_cfg.imds_compat ? MMDS_IMDS_COMPAT : 0));
	if (!ret)
		ret = snap_put_u32(w, n->mmds ? n->mmds_cfg.ipv4 : 0);
	if (!ret)
		ret = snap_put_u32(w, n->mmds ? n->mmds_cfg.version : 0);
	return ret;
}

/* The MMDS part of a v2 state: the interface answers MMDS again as it did. */
static int restore_mmds(struct net_dev *n, struct snap_cursor *c, char *err, size_t errlen)
{
	struct net_mmds_config cfg = { 0 };
	uint32_t flags = 0, ip = 0, version = 0;

	if (snap_get_u32(c, &flags) || snap_get_u32(c, &ip) || snap_get_u32(c, &version) ||
		(flags & ~(MMDS_ON | MMDS_IMDS_COMPAT)) ||
		((flags & MMDS_ON) && version != 1 && version != 2)) {
		snprintf(err, errlen, "net '%s': the snapshot's MMDS configuration is malformed",
			n->id);
		return -EINVAL;
	}
	if (!(flags & MMDS_ON)) {
		mmds_stack_free(n->mmds);
		n->mmds = NULL;
		return 0;
	}
	cfg = (struct net_mmds_config){ .enabled = true,
		.ipv4 = ip,
		.version = version,
		.imds_compat = flags & MMDS_IMDS_COMPAT };
	if (net_mmds_enable(n, &cfg)) {
		snprintf(err, errlen, "net '%s': cannot answer MMDS again (out of memory)", n->id);
		return -ENOMEM;
	}
	return 0;
}

/* The configuration a v1 or v2 state carried: checked against the interface (built from
 * DEVICE_CONFIG, after network overrides: the tap's name there is the one used). */
static int get_old_config(struct net_dev *n, struct snap_cursor *c, char *err, size_t errlen)
{
	const char *id = NULL, *tap = NULL;
	uint8_t mac[8];

	if (snap_get_str(c, &id, STATE_STR_MAX) || snap_get_str(c, &tap, STATE_STR_MAX) ||
		snap_get(c, mac, sizeof(mac)))
		return -EINVAL;
	if (!id || strcmp(id, n->id) != 0) {
		snprintf(err, errlen, "net '%s': the snapshot holds interface '%s'", n->id,
			id ? id : "");
		return -EINVAL;
	}
	if (mac[6] != n->has_mac) {
		snprintf(err, errlen, "net '%s': the snapshot %s a MAC address", n->id,
			mac[6] ? "has" : "has no");
		return -EINVAL;
	}
	memcpy(n->mac, mac, 6); /* the one the guest knows */
	return 0;
}

int net_restore(void *dev, struct snap_cursor *c, char *err, size_t errlen)
{
	struct net_dev *n = dev;
	struct rate_limiter_state rx, tx;
	uint32_t version = 0;
	int ret = 0;

	err[0] = '\0';
	if (snap_get_u32(c, &version) || version < 1 || version > STATE_VERSION)
		ret = -EINVAL;
	if (!ret && version < 3)
		ret = get_old_config(n, c, err, errlen);
	if (!ret && (get_limiter(c, &rx) || get_limiter(c, &tx)))
		ret = -EINVAL;
	if (ret) {
		if (!err[0])
			snprintf(err, errlen, "net '%s': saved state is malformed (version %u)",
				n->id, version);
		return ret;
	}
	if (version >= 2 && restore_mmds(n, c, err, errlen))
		return -EINVAL;
	rate_limiter_restore(&n->rx_rl, &rx, mono_ns());
	rate_limiter_restore(&n->tx_rl, &tx, mono_ns());
	n->rx_held = false;
	if (n->mmds)
		mmds_stack_clear(n->mmds);
	return 0;
}
