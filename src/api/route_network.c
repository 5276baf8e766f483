/* API routes for network interfaces (/network-interfaces/{id}): bodies checked as
 * Firecracker checks them, the tap opened (as Firecracker does at PUT), then kept with
 * its descriptor in the vm_config InstanceStart builds; after boot,
 * PATCH changes an interface's rate limiters through vm.h. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember/net.h"
#include "ember/vm.h"
#include "json.h"

#define IFNAME_MAX 15 /* a tap name: IFNAMSIZ - 1 */

/* ---- /network-interfaces/{id} ---- */

static const struct jfield net_fields[] = {
	JF_STR("iface_id", J_REQUIRED),
	JF_STR("host_dev_name", J_REQUIRED),
	JF_STR("guest_mac", J_OPTIONAL),
	JF_U16("mtu", J_OPTIONAL),
	JF_OBJ("rx_rate_limiter", J_OPTIONAL, &api_limiter),
	JF_OBJ("tx_rate_limiter", J_OPTIONAL, &api_limiter),
	JF_END,
};
static const struct jschema net = { "NetworkInterfaceConfig", net_fields };

static const struct jfield net_update_fields[] = {
	JF_STR("iface_id", J_REQUIRED),
	JF_OBJ("rx_rate_limiter", J_OPTIONAL, &api_limiter),
	JF_OBJ("tx_rate_limiter", J_OPTIONAL, &api_limiter),
	JF_END,
};
static const struct jschema net_update = { "NetworkInterfaceUpdateConfig", net_update_fields };

#define NET_ERR "Network interface error: "

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* "06:00:ac:10:00:02" -> bytes; false unless six hex pairs split by colons. */
static bool parse_mac(const char *s, uint8_t mac[6])
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 6; i++) {
		int hi = hex_digit(s[3 * i]), lo = hex_digit(s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return false;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static int find_net(const struct vm_config *c, const char *id)
{
	for (unsigned i = 0; i < c->nr_nets; i++)
		if (strcmp(c->nets[i].id, id) == 0)
			return (int)i;
	return -1;
}

/* An interface other than `id` already has this MAC. (One that has this tap holds it
 * open: the kernel refuses it, EBUSY, in Firecracker's words, at the open.) */
static bool net_conflicts(const struct api *api, const char *id, const struct net_config *n,
	struct api_resp *r)
{
	for (unsigned i = 0; i < api->cfg.nr_nets; i++) {
		const struct net_config *o = &api->cfg.nets[i];
		if (strcmp(o->id, id) == 0)
			continue;
		if (n->has_mac && o->has_mac && memcmp(o->mac, n->mac, 6) == 0) {
			resp_fault(r, 400,
				NET_ERR "The MAC address is already in use: "
					"%02x:%02x:%02x:%02x:%02x:%02x",
				n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
			return true;
		}
	}
	return false;
}

/* The tap for `n` opened now, as Firecracker opens it at PUT: the one `old` (the
 * interface this PUT replaces, or NULL) holds if it names the same tap, else a new
 * open. False with Firecracker's answer if the tap cannot be opened. */
static bool open_tap(struct net_config *n, struct net_config *old, struct api_resp *r)
{
	char why[384];
	int fd;

	if (old && old->has_fd && strcmp(old->tap, n->tap) == 0) {
		n->tap_fd = old->tap_fd;
		n->has_fd = true;
		old->has_fd = false;
		return true;
	}
	fd = tap_open(n->tap, why, sizeof(why));
	if (fd < 0) {
		resp_fault(r, 400,
			NET_ERR "Could not create the network device: Open tap device failed: %s",
			why);
		return false;
	}
	n->tap_fd = fd;
	n->has_fd = true;
	return true;
}

void api_put_net(struct api *api, const struct api_call *call, struct api_resp *r)
{
	struct net_config n = { 0 };
	const char *mac, *tap;
	uint64_t mtu;
	char msg[160];
	int at;

	if (!api_body_ok(call, &net, r))
		return;
	mac = json_get_str(call->body, "guest_mac");
	if (mac && !parse_mac(mac, n.mac)) {
		snprintf(msg, sizeof(msg),
			"invalid MAC address `%.40s` for field `guest_mac` "
			"(expected six hex pairs such as 06:00:ac:10:00:02)",
			mac);
		resp_bad_body(r, msg);
		return;
	}
	n.has_mac = mac != NULL;
	/* Absent or null: none advertised (the guest's 1500), shown as Firecracker's null. */
	mtu = json_get_uint(call->body, "mtu", 0);
	if (cJSON_IsNumber(json_get(call->body, "mtu")) && mtu < NET_MTU_MIN) {
		snprintf(msg, sizeof(msg),
			"invalid value for field `mtu`: %llu is out of range "
			"68..65535",
			(unsigned long long)mtu);
		resp_bad_body(r, msg);
		return;
	}
	n.mtu = (uint16_t)mtu;
	/* EMBER_NET_OFFLOADS=0: the feature set before offloads (MAC, MTU), for benches. */
	n.no_offloads = getenv("EMBER_NET_OFFLOADS") && !strcmp(getenv("EMBER_NET_OFFLOADS"), "0");
	if (!api_same_id(call, "iface_id", true, r) || !api_pre_boot(api, r))
		return;
	tap = json_get_str(call->body, "host_dev_name");
	if (!tap[0] || strlen(tap) > IFNAME_MAX) {
		resp_fault(r, 400,
			NET_ERR "host_dev_name `%.40s`: a tap device name has 1 to %d "
				"bytes",
			tap, IFNAME_MAX);
		return;
	}
	if (net_conflicts(api, call->id, &n, r) ||
		!api_limit_of(call->body, "rx_rate_limiter", "Network interface error", &n.rx_limit,
			r) ||
		!api_limit_of(call->body, "tx_rate_limiter", "Network interface error", &n.tx_limit,
			r))
		return;
	at = find_net(&api->cfg, call->id);
	if (at < 0 && api->cfg.nr_nets == VM_MAX_NETS) {
		resp_fault(r, 400, NET_ERR "at most %d network interfaces", VM_MAX_NETS);
		return;
	}
	if (!api_set_str(&n.id, call->id, r) || !api_set_str(&n.tap, tap, r) ||
		!open_tap(&n, at < 0 ? NULL : &api->cfg.nets[at], r)) {
		free(n.id);
		free(n.tap);
		return;
	}
	if (at < 0) {
		at = (int)api->cfg.nr_nets++;
	} else {
		free(api->cfg.nets[at].id);
		free(api->cfg.nets[at].tap);
		if (api->cfg.nets[at].has_fd)
			close(api->cfg.nets[at].tap_fd); /* replaced by another tap */
	}
	api->cfg.nets[at] = n;
	api->boot_path = true;
	resp_ok(r);
}

void api_patch_net(struct api *api, const struct api_call *call, struct api_resp *r)
{
	struct rate_limit_update rx, tx;
	char err[512];

	if (!api_body_ok(call, &net_update, r) || !api_same_id(call, "iface_id", true, r))
		return;
	if (!api_booted(api)) {
		resp_fault(r, 400, MSG_PRE_BOOT);
		return;
	}
	if (!api_limit_update_of(call->body, "rx_rate_limiter", "Network interface error", &rx,
		    r) ||
		!api_limit_update_of(call->body, "tx_rate_limiter", "Network interface error", &tx,
			r))
		return;
	if (vm_net_update(api->vm, call->id, &rx, &tx, err, sizeof(err)))
		resp_fault(r, 400, NET_ERR "%s", err);
	else
		resp_ok(r);
}

void api_delete_net(struct api *api, const struct api_call *call, struct api_resp *r)
{
	(void)api;
	(void)call;
	resp_fault(r, 400,
		NET_ERR "removing a network interface is not supported by this "
			"ember yet");
}

cJSON *api_nets_json(const struct vm_config *c)
{
	cJSON *a = cJSON_CreateArray();

	for (unsigned i = 0; i < c->nr_nets; i++) {
		const struct net_config *n = &c->nets[i];
		cJSON *o = cJSON_CreateObject();
		char mac[18];

		cJSON_AddStringToObject(o, "iface_id", n->id);
		cJSON_AddStringToObject(o, "host_dev_name", n->tap);
		if (n->has_mac) {
			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
				n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
			cJSON_AddStringToObject(o, "guest_mac", mac);
		} else {
			cJSON_AddNullToObject(o, "guest_mac");
		}
		if (n->mtu)
			cJSON_AddNumberToObject(o, "mtu", n->mtu);
		else
			cJSON_AddNullToObject(o, "mtu");
		cJSON_AddItemToObject(o, "rx_rate_limiter", api_limit_json(&n->rx_limit));
		cJSON_AddItemToObject(o, "tx_rate_limiter", api_limit_json(&n->tx_limit));
		cJSON_AddItemToArray(a, o);
	}
	return a;
}
