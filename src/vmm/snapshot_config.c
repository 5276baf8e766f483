/* The device configuration inside a snapshot: what restore needs to rebuild the same
 * devices (drive paths, tap names, vsock socket, limits) before their state is applied. */
#include "vm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ember/snapshot_file.h"

static int put_limit(struct snap_writer *w, const struct rate_limit *l)
{
	const struct token_bucket_config *b[2] = { &l->bandwidth, &l->ops };
	int ret = 0;

	for (unsigned i = 0; !ret && i < 2; i++) {
		ret = snap_put_u64(w, b[i]->size);
		if (!ret)
			ret = snap_put_u64(w, b[i]->one_time_burst);
		if (!ret)
			ret = snap_put_u64(w, b[i]->refill_time_ms);
	}
	return ret;
}

static void get_limit(struct snap_cursor *c, struct rate_limit *l)
{
	struct token_bucket_config *b[2] = { &l->bandwidth, &l->ops };

	/* Sticky cursor errors: one check by the caller covers every read. */
	for (unsigned i = 0; i < 2; i++)
		if (snap_get_u64(c, &b[i]->size) || snap_get_u64(c, &b[i]->one_time_burst) ||
			snap_get_u64(c, &b[i]->refill_time_ms))
			return;
}

/* Version 3 (issue 15): the pmem devices at the end (count, then id, path, flags
 * PMEM_ROOT / PMEM_READ_ONLY and limit each); older versions have none. */
#define PMEM_ROOT 1u
#define PMEM_READ_ONLY 2u

static int put_pmem(struct snap_writer *w, const struct vm_config *c)
{
	int ret = snap_put_u32(w, c->nr_pmem);

	for (unsigned i = 0; !ret && i < c->nr_pmem; i++) {
		const struct pmem_config *p = &c->pmem[i];
		ret = snap_put_str(w, p->id);
		if (!ret)
			ret = snap_put_str(w, p->path);
		if (!ret)
			ret = snap_put_u32(w,
				(p->root ? PMEM_ROOT : 0) | (p->read_only ? PMEM_READ_ONLY : 0));
		if (!ret)
			ret = put_limit(w, &p->limit);
	}
	return ret;
}

/* 0, or -EINVAL for a malformed list (the caller says so). */
static int get_pmem(struct snap_cursor *cur, struct vm_config *c)
{
	uint32_t v;

	if (cur->version < 3)
		return 0;
	if (snap_get_u32(cur, &c->nr_pmem) || c->nr_pmem > VM_MAX_PMEM)
		return -EINVAL;
	for (unsigned i = 0; i < c->nr_pmem; i++) {
		struct pmem_config *p = &c->pmem[i];
		if (snap_get_str(cur, (const char **)&p->id, 64) ||
			snap_get_str(cur, (const char **)&p->path, SNAP_PATH_MAX) ||
			snap_get_u32(cur, &v) || v > (PMEM_ROOT | PMEM_READ_ONLY))
			return -EINVAL;
		p->root = v & PMEM_ROOT;
		p->read_only = v & PMEM_READ_ONLY;
		get_limit(cur, &p->limit);
	}
	return cur->bad ? -EINVAL : 0;
}

/* Version 2 (issue 15): a drive's flags carry cache_type Writeback (bit 2), the balloon
 * a sixth word, free_page_hinting. Version 1 is still read: no hinting, and its drives
 * offered FLUSH, so they come back as Writeback. */
/* Version 3: the pmem list (put_pmem), then the memory hotplug area (enabled, total,
 * block, slot MiB), at the end. */
#define DEVICE_CONFIG_VERSION 3
#define DRIVE_READ_ONLY 1u
#define DRIVE_ROOT 2u
#define DRIVE_WRITEBACK 4u
/* io_engine Async. A bit of version 2: an ember that does not know it brings the drive
 * back as Sync, the same disk to the guest. */
#define DRIVE_ASYNC 8u

int snapshot_save_devices(const struct vm_config *c, struct snap_writer *w)
{
	int ret = snap_section_begin(w, SNAP_SEC_DEVICE_CONFIG, DEVICE_CONFIG_VERSION);

	if (!ret)
		ret = snap_put_u32(w, c->device_discovery);
	if (!ret)
		ret = snap_put_u32(w, c->nr_drives);
	for (unsigned i = 0; !ret && i < c->nr_drives; i++) {
		const struct drive_config *d = &c->drives[i];
		ret = snap_put_str(w, d->id);
		if (!ret)
			ret = snap_put_str(w, d->path);
		if (!ret)
			ret = snap_put_u32(w,
				(d->read_only ? DRIVE_READ_ONLY : 0) | (d->root ? DRIVE_ROOT : 0) |
					(d->writeback ? DRIVE_WRITEBACK : 0) |
					(d->async_io ? DRIVE_ASYNC : 0));
		if (!ret)
			ret = put_limit(w, &d->limit);
	}
	if (!ret)
		ret = snap_put_u32(w, c->nr_nets);
	for (unsigned i = 0; !ret && i < c->nr_nets; i++) {
		const struct net_config *n = &c->nets[i];
		ret = snap_put_str(w, n->id);
		if (!ret)
			ret = snap_put_str(w, n->tap);
		if (!ret)
			ret = snap_put_u32(w,
				(uint32_t)n->has_mac | (uint32_t)n->no_offloads << 1 |
					(uint32_t)n->mtu << 16);
		if (!ret)
			ret = snap_put(w, n->mac, sizeof(n->mac));
		if (!ret)
			ret = put_limit(w, &n->rx_limit);
		if (!ret)
			ret = put_limit(w, &n->tx_limit);
	}
	if (!ret)
		ret = snap_put_u32(w, c->vsock.enabled);
	if (!ret)
		ret = snap_put_u32(w, c->vsock.guest_cid);
	if (!ret)
		ret = snap_put_str(w, c->vsock.uds_path);
	if (!ret)
		ret = snap_put_u32(w, c->entropy.enabled);
	if (!ret)
		ret = put_limit(w, &c->entropy.limit);
	if (!ret)
		ret = snap_put(w,
			&(uint32_t[6]){ c->balloon.enabled, c->balloon.amount_mib,
				c->balloon.deflate_on_oom, c->balloon.stats_polling_interval_s,
				c->balloon.free_page_reporting, c->balloon.free_page_hinting },
			6 * sizeof(uint32_t));
	if (!ret)
		ret = put_pmem(w, c);
	if (!ret)
		ret = snap_put(w,
			&(uint32_t[4]){ c->mem_hotplug.enabled, c->mem_hotplug.total_mib,
				c->mem_hotplug.block_mib, c->mem_hotplug.slot_mib },
			4 * sizeof(uint32_t));
	return ret ? ret : snap_section_end(w);
}

int snapshot_load_devices(const struct snap_reader *r, struct vm_config *c, char *err,
	size_t errlen)
{
	struct snap_cursor cur;
	uint32_t v = 0, b[6] = { 0 };
	char why[256];
	int ret;

	if (snap_reader_find(r, SNAP_SEC_DEVICE_CONFIG, 0, &cur))
		return 0; /* a machine without devices */
	if (cur.version < 1 || cur.version > DEVICE_CONFIG_VERSION) {
		snprintf(err, errlen,
			"state file: device configuration version %u, this ember reads 1 to %d",
			cur.version, DEVICE_CONFIG_VERSION);
		return -ENOTSUP;
	}
	if (snap_get_u32(&cur, &v) || v > DISCOVERY_CMDLINE || snap_get_u32(&cur, &c->nr_drives) ||
		c->nr_drives > VM_MAX_DRIVES)
		goto bad;
	c->device_discovery = (enum device_discovery)v;
	for (unsigned i = 0; i < c->nr_drives; i++) {
		struct drive_config *d = &c->drives[i];
		if (snap_get_str(&cur, (const char **)&d->id, 64) ||
			snap_get_str(&cur, (const char **)&d->path, SNAP_PATH_MAX) ||
			snap_get_u32(&cur, &v))
			goto bad;
		d->read_only = v & DRIVE_READ_ONLY;
		d->root = v & DRIVE_ROOT;
		/* Embers before version 2 offered FLUSH on every drive, and the restored
		 * guest may have taken it: such a drive keeps it (Writeback). */
		d->writeback = cur.version >= 2 ? (v & DRIVE_WRITEBACK) != 0 : true;
		d->async_io = (v & DRIVE_ASYNC) != 0;
		get_limit(&cur, &d->limit);
	}
	if (snap_get_u32(&cur, &c->nr_nets) || c->nr_nets > VM_MAX_NETS)
		goto bad;
	for (unsigned i = 0; i < c->nr_nets; i++) {
		struct net_config *n = &c->nets[i];
		if (snap_get_str(&cur, (const char **)&n->id, 64) ||
			snap_get_str(&cur, (const char **)&n->tap, 16) || snap_get_u32(&cur, &v) ||
			snap_get(&cur, n->mac, sizeof(n->mac)))
			goto bad;
		/* bit 0: has_mac; bit 1: no_offloads (0 in states from before: offloads on, as
		 * they were); bits 16-31: mtu (0 in states from before mtu: none). */
		if ((v & 0xfffc) || (v >> 16 && v >> 16 < NET_MTU_MIN))
			goto bad;
		n->has_mac = v & 1;
		n->no_offloads = v & 2;
		n->mtu = (uint16_t)(v >> 16);
		get_limit(&cur, &n->rx_limit);
		get_limit(&cur, &n->tx_limit);
	}
	if (snap_get_u32(&cur, &v) || snap_get_u32(&cur, &c->vsock.guest_cid) ||
		snap_get_str(&cur, (const char **)&c->vsock.uds_path, SNAP_PATH_MAX))
		goto bad;
	c->vsock.enabled = v != 0;
	if (snap_get_u32(&cur, &v))
		goto bad;
	c->entropy.enabled = v != 0;
	get_limit(&cur, &c->entropy.limit);
	if (snap_get(&cur, b, (cur.version >= 2 ? 6 : 5) * sizeof(b[0])) || cur.bad)
		goto bad;
	c->balloon = (struct balloon_config){ .enabled = b[0] != 0,
		.amount_mib = b[1],
		.deflate_on_oom = b[2] != 0,
		.stats_polling_interval_s = b[3],
		.free_page_reporting = b[4] != 0,
		.free_page_hinting = b[5] != 0 };
	if (get_pmem(&cur, c))
		goto bad;
	if (cur.version >= 3) {
		if (snap_get(&cur, b, 4 * sizeof(b[0])))
			goto bad;
		c->mem_hotplug = (struct mem_hotplug_config){ .enabled = b[0] != 0,
			.total_mib = b[1],
			.block_mib = b[2],
			.slot_mib = b[3] };
		if (c->mem_hotplug.enabled &&
			mem_hotplug_config_check(&c->mem_hotplug, why, sizeof(why))) {
			snprintf(err, errlen, "state file: memory hotplug: %s", why);
			return -EINVAL;
		}
	}
	/* A NULL or duplicate id would reach strcmp in the overrides and the device builders:
	 * the names are checked here, before the configuration is used at all. */
	ret = vm_config_check_names(c, why, sizeof(why));
	if (ret)
		snprintf(err, errlen, "state file: device configuration: %s", why);
	return ret;
bad:
	snprintf(err, errlen, "state file: device configuration is malformed");
	return -EINVAL;
}
