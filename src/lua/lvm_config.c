/* Reading a machine definition (a Lua table) into struct vm_config, device tables
 * included. Every problem raises a definition error that names the key. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "ember/config.h"
#include "ember/mmds.h"
#include "internal.h"

void lvm_only_keys(lua_State *L, int t, const char *where, const char *const allowed[])
{
	t = lua_absindex(L, t);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		bool ok = false;
		if (lua_type(L, -2) == LUA_TSTRING)
			for (const char *const *a = allowed; *a && !ok; a++)
				ok = !strcmp(*a, lua_tostring(L, -2));
		if (!ok) {
			lua_pushvalue(L, -2);
			config_error(L, "%s: unknown key '%s'", where, luaL_tolstring(L, -1, NULL));
		}
		lua_pop(L, 1);
	}
}

/* Field `key` of table `t`: pushed, and its type checked against `want` (nil allowed). */
static int field(lua_State *L, int t, const char *where, const char *key, int want)
{
	int type = lua_getfield(L, t, key);

	if (type != LUA_TNIL && type != want)
		config_error(L, "%s.%s: expected a %s, got %s", where, key, lua_typename(L, want),
			luaL_typename(L, -1));
	return type;
}

const char *lvm_opt_str(lua_State *L, int t, const char *where, const char *key)
{
	const char *s = field(L, t, where, key, LUA_TSTRING) == LUA_TNIL ? NULL
									 : lua_tostring(L, -1);
	lua_pop(L, 1); /* the table keeps the string alive */
	return s;
}

static bool opt_bool(lua_State *L, int t, const char *where, const char *key)
{
	bool b = field(L, t, where, key, LUA_TBOOLEAN) != LUA_TNIL && lua_toboolean(L, -1);

	lua_pop(L, 1);
	return b;
}

static uint64_t opt_uint(lua_State *L, int t, const char *where, const char *key, uint64_t dflt,
	uint64_t max)
{
	uint64_t v = dflt;

	if (field(L, t, where, key, LUA_TNUMBER) != LUA_TNIL) {
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 ||
			(uint64_t)lua_tointeger(L, -1) > max)
			config_error(L, "%s.%s: expected an integer from 0 to %llu", where, key,
				(unsigned long long)max);
		v = (uint64_t)lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

/* Returns whether the bucket was given. */
static bool read_bucket(lua_State *L, int t, const char *where, const char *key,
	struct token_bucket_config *b)
{
	static const char *const keys[] = { "size", "one_time_burst", "refill_time", NULL };
	bool given = field(L, t, where, key, LUA_TTABLE) != LUA_TNIL;
	char sub[96];

	if (given) {
		snprintf(sub, sizeof(sub), "%s.%s", where, key);
		lvm_only_keys(L, -1, sub, keys);
		b->size = opt_uint(L, -1, sub, "size", 0, UINT64_MAX >> 1);
		b->one_time_burst = opt_uint(L, -1, sub, "one_time_burst", 0, UINT64_MAX >> 1);
		b->refill_time_ms = opt_uint(L, -1, sub, "refill_time", 0, UINT64_MAX >> 1);
		if (b->size && !b->refill_time_ms)
			config_error(L, "%s: refill_time (ms) must be more than 0", sub);
	}
	lua_pop(L, 1);
	return given;
}

unsigned lvm_read_limit(lua_State *L, int t, const char *where, const char *key,
	struct rate_limit *r)
{
	static const char *const keys[] = { "bandwidth", "ops", NULL };
	unsigned given = 0;
	char sub[96];

	if (field(L, t, where, key, LUA_TTABLE) != LUA_TNIL) {
		snprintf(sub, sizeof(sub), "%s.%s", where, key);
		lvm_only_keys(L, -1, sub, keys);
		given = LIMIT_GIVEN;
		if (read_bucket(L, lua_gettop(L), sub, "bandwidth", &r->bandwidth))
			given |= LIMIT_BANDWIDTH;
		if (read_bucket(L, lua_gettop(L), sub, "ops", &r->ops))
			given |= LIMIT_OPS;
	}
	lua_pop(L, 1);
	return given;
}

/* The drive's cache_type, Firecracker's names: "Unsafe" (the default) or "Writeback". */
static bool cache_type(lua_State *L, const char *where)
{
	const char *v = lvm_opt_str(L, -1, where, "cache_type");

	if (v && strcmp(v, "Writeback") != 0 && strcmp(v, "Unsafe") != 0)
		config_error(L, "%s.cache_type: \"%s\" is neither \"Unsafe\" nor \"Writeback\"",
			where, v);
	return v && strcmp(v, "Writeback") == 0;
}

/* The drive's io_engine, Firecracker's names: "Sync" (the default) or "Async" (io_uring). */
static bool io_engine(lua_State *L, const char *where)
{
	const char *v = lvm_opt_str(L, -1, where, "io_engine");

	if (v && strcmp(v, "Async") != 0 && strcmp(v, "Sync") != 0)
		config_error(L, "%s.io_engine: \"%s\" is neither \"Sync\" nor \"Async\"", where, v);
	return v && strcmp(v, "Async") == 0;
}

static void read_drives(lua_State *L, int t, struct vm_config *cfg)
{
	static const char *const keys[] = { "id", "path", "read_only", "root", "rate_limit",
		"cache_type", "io_engine", NULL };
	char where[32];

	if (field(L, t, "vm", "drives", LUA_TTABLE) == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	for (int i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
		struct drive_config *d = &cfg->drives[cfg->nr_drives];
		snprintf(where, sizeof(where), "drives[%d]", i);
		if (!lua_istable(L, -1))
			config_error(L, "%s: expected a table", where);
		if (cfg->nr_drives == VM_MAX_DRIVES)
			config_error(L, "drives: at most %d", VM_MAX_DRIVES);
		lvm_only_keys(L, -1, where, keys);
		d->id = (char *)lvm_opt_str(L, -1, where, "id");
		d->path = (char *)lvm_opt_str(L, -1, where, "path");
		d->read_only = opt_bool(L, -1, where, "read_only");
		d->root = opt_bool(L, -1, where, "root");
		d->writeback = cache_type(L, where);
		d->async_io = io_engine(L, where);
		lvm_read_limit(L, lua_gettop(L), where, "rate_limit", &d->limit);
		cfg->nr_drives++;
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
}

/* pmem = { { path = ..., id = ..., root_device = ..., read_only = ..., rate_limit = ... } }:
 * the guest's /dev/pmem0, 1, ... in this order. An id left out is "pmem<N>" (N from 0),
 * set in the entry so the table keeps the string. */
static void read_pmem(lua_State *L, int t, struct vm_config *cfg)
{
	static const char *const keys[] = { "id", "path", "root_device", "read_only", "rate_limit",
		NULL };
	char where[32];

	if (field(L, t, "vm", "pmem", LUA_TTABLE) == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	for (int i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
		struct pmem_config *p = &cfg->pmem[cfg->nr_pmem];
		snprintf(where, sizeof(where), "pmem[%d]", i);
		if (!lua_istable(L, -1))
			config_error(L, "%s: expected a table", where);
		if (cfg->nr_pmem == VM_MAX_PMEM)
			config_error(L, "pmem: at most %d", VM_MAX_PMEM);
		lvm_only_keys(L, -1, where, keys);
		if (lua_getfield(L, -1, "id") == LUA_TNIL) {
			lua_pushfstring(L, "pmem%d", i - 1);
			lua_setfield(L, -3, "id");
		}
		lua_pop(L, 1);
		p->id = (char *)lvm_opt_str(L, -1, where, "id");
		p->path = (char *)lvm_opt_str(L, -1, where, "path");
		p->root = opt_bool(L, -1, where, "root_device");
		p->read_only = opt_bool(L, -1, where, "read_only");
		lvm_read_limit(L, lua_gettop(L), where, "rate_limit", &p->limit);
		cfg->nr_pmem++;
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
}

static void read_mac(lua_State *L, const char *where, const char *s, struct net_config *n)
{
	unsigned b[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		    &end) != 6)
		config_error(L, "%s.mac: '%s' is not a MAC address like 06:00:ac:10:00:02", where,
			s);
	for (int i = 0; i < 6; i++)
		n->mac[i] = (uint8_t)b[i];
	n->has_mac = true;
}

static void read_nets(lua_State *L, int t, struct vm_config *cfg)
{
	static const char *const keys[] = { "id", "tap", "mac", "mtu", "rx_rate_limit",
		"tx_rate_limit", "offloads", NULL };
	char where[32];

	if (field(L, t, "vm", "net", LUA_TTABLE) == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	for (int i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
		struct net_config *n = &cfg->nets[cfg->nr_nets];
		const char *mac;
		snprintf(where, sizeof(where), "net[%d]", i);
		if (!lua_istable(L, -1))
			config_error(L, "%s: expected a table", where);
		if (cfg->nr_nets == VM_MAX_NETS)
			config_error(L, "net: at most %d interfaces", VM_MAX_NETS);
		lvm_only_keys(L, -1, where, keys);
		n->id = (char *)lvm_opt_str(L, -1, where, "id");
		n->tap = (char *)lvm_opt_str(L, -1, where, "tap");
		mac = lvm_opt_str(L, -1, where, "mac");
		if (mac)
			read_mac(L, where, mac, n);
		n->mtu = (uint16_t)opt_uint(L, -1, where, "mtu", 0, UINT16_MAX);
		if (n->mtu && n->mtu < NET_MTU_MIN)
			config_error(L, "%s.mtu: %d is below %d", where, (int)n->mtu, NET_MTU_MIN);
		lvm_read_limit(L, lua_gettop(L), where, "rx_rate_limit", &n->rx_limit);
		lvm_read_limit(L, lua_gettop(L), where, "tx_rate_limit", &n->tx_limit);
		/* offloads = false: only MAC and MTU offered, as before issue 15 (benches). */
		n->no_offloads = field(L, -1, where, "offloads", LUA_TBOOLEAN) != LUA_TNIL &&
			!lua_toboolean(L, -1);
		lua_pop(L, 1);
		cfg->nr_nets++;
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
}

static void read_singletons(lua_State *L, int t, struct vm_config *cfg)
{
	static const char *const vsock_keys[] = { "guest_cid", "uds_path", NULL };
	static const char *const entropy_keys[] = { "rate_limit", NULL };
	static const char *const balloon_keys[] = { "amount_mib", "deflate_on_oom",
		"stats_polling_interval_s", "free_page_hinting", "free_page_reporting", NULL };
	static const char *const hotplug_keys[] = { "total_mib", "block_mib", "slot_mib", NULL };
	struct mem_hotplug_config *h = &cfg->mem_hotplug;
	char why[160];

	if (field(L, t, "vm", "vsock", LUA_TTABLE) != LUA_TNIL) {
		lvm_only_keys(L, -1, "vsock", vsock_keys);
		cfg->vsock.enabled = true;
		cfg->vsock.guest_cid = (uint32_t)opt_uint(L, -1, "vsock", "guest_cid", 3,
			UINT32_MAX);
		cfg->vsock.uds_path = (char *)lvm_opt_str(L, -1, "vsock", "uds_path");
	}
	lua_pop(L, 1);
	if (field(L, t, "vm", "entropy", LUA_TTABLE) != LUA_TNIL) {
		lvm_only_keys(L, -1, "entropy", entropy_keys);
		cfg->entropy.enabled = true;
		lvm_read_limit(L, lua_gettop(L), "entropy", "rate_limit", &cfg->entropy.limit);
	}
	lua_pop(L, 1);
	if (field(L, t, "vm", "balloon", LUA_TTABLE) != LUA_TNIL) {
		lvm_only_keys(L, -1, "balloon", balloon_keys);
		cfg->balloon.enabled = true;
		cfg->balloon.amount_mib = (uint32_t)opt_uint(L, -1, "balloon", "amount_mib", 0,
			UINT32_MAX);
		cfg->balloon.deflate_on_oom = opt_bool(L, -1, "balloon", "deflate_on_oom");
		cfg->balloon.stats_polling_interval_s = (uint32_t)opt_uint(L, -1, "balloon",
			"stats_polling_interval_s", 0, UINT32_MAX);
		cfg->balloon.free_page_hinting = opt_bool(L, -1, "balloon", "free_page_hinting");
		cfg->balloon.free_page_reporting = opt_bool(L, -1, "balloon",
			"free_page_reporting");
	}
	lua_pop(L, 1);
	/* memory_hotplug = { total_mib = 1024, block_mib = 2, slot_mib = 128 }: as PUT
	 * /hotplug/memory (block and slot default to Firecracker's 2 and 128). */
	if (field(L, t, "vm", "memory_hotplug", LUA_TTABLE) != LUA_TNIL) {
		lvm_only_keys(L, -1, "memory_hotplug", hotplug_keys);
		h->enabled = true;
		h->total_mib = (uint32_t)opt_uint(L, -1, "memory_hotplug", "total_mib", 0,
			UINT32_MAX);
		h->block_mib = (uint32_t)opt_uint(L, -1, "memory_hotplug", "block_mib",
			MEM_HOTPLUG_DEFAULT_BLOCK_MIB, UINT32_MAX);
		h->slot_mib = (uint32_t)opt_uint(L, -1, "memory_hotplug", "slot_mib",
			MEM_HOTPLUG_DEFAULT_SLOT_MIB, UINT32_MAX);
		if (mem_hotplug_config_check(h, why, sizeof(why)))
			config_error(L, "memory_hotplug: %s", why);
	}
	lua_pop(L, 1);
}

/* mmds = { network_interfaces = { "eth0" }, version = "V2", ipv4_address = "...",
 * imds_compat = false }: as Firecracker's PUT /mmds/config, after `net`. */
static void read_mmds(lua_State *L, int t, struct vm_config *cfg)
{
	static const char *const keys[] = { "network_interfaces", "version", "ipv4_address",
		"imds_compat", NULL };
	struct net_mmds_config m = { .enabled = true, .ipv4 = MMDS_DEFAULT_IPV4, .version = 1 };
	const char *version, *ip;
	struct in_addr a;
	int n = 0;

	if (field(L, t, "vm", "mmds", LUA_TTABLE) == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	lvm_only_keys(L, -1, "mmds", keys);
	version = lvm_opt_str(L, -1, "mmds", "version");
	if (version && strcmp(version, "V1") && strcmp(version, "V2"))
		config_error(L, "mmds.version: '%s' is not V1 or V2", version);
	m.version = version && !strcmp(version, "V2") ? 2 : 1;
	ip = lvm_opt_str(L, -1, "mmds", "ipv4_address");
	if (ip && (inet_pton(AF_INET, ip, &a) != 1 || (ntohl(a.s_addr) >> 16) != 0xa9fe))
		config_error(L, "mmds.ipv4_address: '%s' is not a link-local IPv4 address", ip);
	if (ip)
		m.ipv4 = ntohl(a.s_addr);
	m.imds_compat = opt_bool(L, -1, "mmds", "imds_compat");
	if (field(L, -1, "mmds", "network_interfaces", LUA_TTABLE) == LUA_TNIL)
		config_error(L, "mmds.network_interfaces: a list of interface ids is needed");
	for (int i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++, n++) {
		const char *id = lua_tostring(L, -1);
		unsigned k = 0;
		while (id && k < cfg->nr_nets && strcmp(cfg->nets[k].id ? cfg->nets[k].id : "", id))
			k++;
		if (!id || k == cfg->nr_nets)
			config_error(L, "mmds.network_interfaces[%d]: no interface '%s' in net", i,
				id ? id : luaL_typename(L, -1));
		cfg->nets[k].mmds = m;
		lua_pop(L, 1);
	}
	if (n == 0)
		config_error(L, "mmds.network_interfaces: a list of interface ids is needed");
	lua_pop(L, 3);
}

void lvm_read_config(lua_State *L, int t, struct vm_config *cfg)
{
	const char *backing, *console, *discovery;

	t = lua_absindex(L, t);
	vm_config_init(cfg);
	cfg->vcpus = (unsigned)opt_uint(L, t, "vm", "vcpus", 1, 1u << 20);
	cfg->mem_mib = opt_uint(L, t, "vm", "memory_mib", 128, UINT64_MAX >> 21);
	/* The strings stay owned by the table: vm_new copies the configuration. */
	cfg->kernel = (char *)lvm_opt_str(L, t, "vm", "kernel");
	cfg->initrd = (char *)lvm_opt_str(L, t, "vm", "initrd");
	cfg->cmdline = (char *)lvm_opt_str(L, t, "vm", "cmdline");
	cfg->console_log = (char *)lvm_opt_str(L, t, "vm", "console_log");
	backing = lvm_opt_str(L, t, "vm", "memory_backing");
	if (backing && vm_config_parse_backing(backing, &cfg->mem_backing))
		config_error(L, "memory_backing: '%s' is not anon, memfd, hugetlb or thp", backing);
	console = lvm_opt_str(L, t, "vm", "console");
	if (console && strcmp(console, "stdio") != 0 && strcmp(console, "none") != 0)
		config_error(L, "console: '%s' is not stdio or none", console);
	cfg->console = console && strcmp(console, "none") == 0 ? CONSOLE_NONE : CONSOLE_STDIO;
	cfg->track_dirty_pages = opt_bool(L, t, "vm", "track_dirty_pages");
	discovery = lvm_opt_str(L, t, "vm", "device_discovery");
	if (discovery && strcmp(discovery, "acpi") && strcmp(discovery, "cmdline"))
		config_error(L, "device_discovery: '%s' is not acpi or cmdline", discovery);
	cfg->device_discovery = discovery && !strcmp(discovery, "cmdline") ? DISCOVERY_CMDLINE
									   : DISCOVERY_ACPI;
	read_drives(L, t, cfg);
	read_pmem(L, t, cfg);
	read_nets(L, t, cfg);
	read_mmds(L, t, cfg);
	read_singletons(L, t, cfg);
	lvm_read_cpu(L, t, cfg);
}
