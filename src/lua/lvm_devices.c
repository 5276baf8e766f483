/* Methods of "ember.vm" that drive its devices while it runs: the balloon, and drive and
 * network interface updates (the Lua side of PATCH /balloon, /drives, /network-interfaces). */
#include <stdbool.h>

#include <lauxlib.h>

#include "ember/balloon.h"
#include "ember/config.h"
#include "ember/rate_limiter.h"
#include "ember/vm.h"
#include "internal.h"

/* vm:hotplug_memory(mib): ask the guest to plug `mib` MiB of its hotplug area. */
static int m_hotplug_memory(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	lua_Integer mib = luaL_checkinteger(L, 2);
	char err[256];

	luaL_argcheck(L, mib >= 0 && mib <= UINT32_MAX, 2, "MiB out of range");
	return push_result(L, vm_mem_hotplug_set(v->vm, (uint32_t)mib, err, sizeof(err)), err);
}

/* vm:hotplug_memory_status() -> { total_mib, block_mib, slot_mib, plugged_mib,
 * requested_mib } */
static int m_hotplug_memory_status(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct mem_hotplug_status st;
	char err[256];

	if (vm_mem_hotplug_status(v->vm, &st, err, sizeof(err)))
		return push_fail(L, err);
	lua_createtable(L, 0, 5);
	set_integer(L, "total_mib", st.total_mib);
	set_integer(L, "block_mib", st.block_mib);
	set_integer(L, "slot_mib", st.slot_mib);
	set_integer(L, "plugged_mib", st.plugged_mib);
	set_integer(L, "requested_mib", st.requested_mib);
	return 1;
}

/* vm:balloon(mib): ask the guest to give `mib` MiB back. */
static int m_balloon(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	lua_Integer mib = luaL_checkinteger(L, 2);
	char err[256];

	luaL_argcheck(L, mib >= 0 && mib <= UINT32_MAX, 2, "MiB out of range");
	return push_result(L, vm_balloon_set(v->vm, (uint32_t)mib, err, sizeof(err)), err);
}

/* vm:balloon_stats() -> { target_mib, actual_mib, updates, swap_in = ..., ... } */
static int m_balloon_stats(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct balloon_stats st;
	char err[256];

	if (vm_balloon_stats(v->vm, &st, err, sizeof(err)))
		return push_fail(L, err);
	lua_createtable(L, 0, 8);
	set_integer(L, "target_mib", st.target_mib);
	set_integer(L, "actual_mib", st.actual_mib);
	set_integer(L, "target_pages", st.target_pages);
	set_integer(L, "actual_pages", st.actual_pages);
	set_integer(L, "updates", st.updates);
	set_integer(L, "stats_polling_interval_s", st.polling_interval_s);
	for (unsigned tag = 0; tag < BALLOON_STAT_TAGS; tag++) {
		if (!(st.present >> tag & 1))
			continue;
		set_integer(L, balloon_stat_name(tag), st.value[tag]);
	}
	return 1;
}

/* vm:balloon_hinting(op [, acknowledge_on_stop]): op "start" (acknowledge_on_stop true
 * unless false is given), "stop" or "status"; the Lua side of /balloon/hinting/. Returns
 * { host_cmd, guest_cmd (nil until the guest sent one), hinted_bytes, ignored_hints }. */
static int m_balloon_hinting(lua_State *L)
{
	static const char *const ops[] = { "status", "start", "stop", NULL };
	struct lvm *v = lvm_check(L, 1);
	int op = luaL_checkoption(L, 2, NULL, ops);
	bool ack = lua_isnoneornil(L, 3) || lua_toboolean(L, 3);
	struct balloon_hinting h;
	char err[256];

	/* The option list follows enum balloon_hint_op's order. */
	if (vm_balloon_hinting(v->vm, (enum balloon_hint_op)op, ack, &h, err, sizeof(err)))
		return push_fail(L, err);
	lua_createtable(L, 0, 4);
	set_integer(L, "host_cmd", h.host_cmd);
	if (h.has_guest_cmd)
		set_integer(L, "guest_cmd", h.guest_cmd);
	set_integer(L, "hinted_bytes", h.hinted_bytes);
	set_integer(L, "ignored_hints", h.ignored_hints);
	return 1;
}

/* Limit `key` of the argument table as an update: the buckets it gives are replaced (size
 * 0: removed), the others kept, as Firecracker's PATCH. False when the key is absent. */
static bool read_update(lua_State *L, const char *where, const char *key,
	struct rate_limit_update *u)
{
	unsigned given;

	memset(u, 0, sizeof(*u));
	given = lvm_read_limit(L, 2, where, key, &u->limit);
	u->bandwidth_set = given & LIMIT_BANDWIDTH;
	u->ops_set = given & LIMIT_OPS;
	return given != 0;
}

/* vm:update_drive { id = ID, path = PATH, rate_limit = {...} }: serve the drive from
 * another file and/or change its rate limit, running or paused. A path that cannot be
 * opened leaves the drive on its old file. */
static int m_update_drive(lua_State *L)
{
	static const char *const keys[] = { "id", "path", "rate_limit", NULL };
	struct lvm *v = lvm_check(L, 1);
	struct rate_limit_update limit;
	const char *id, *path;
	bool has_limit;
	char err[512];

	luaL_checktype(L, 2, LUA_TTABLE);
	lvm_only_keys(L, 2, "update_drive", keys);
	id = lvm_opt_str(L, 2, "update_drive", "id");
	path = lvm_opt_str(L, 2, "update_drive", "path");
	has_limit = read_update(L, "update_drive", "rate_limit", &limit);
	if (!id)
		return config_error(L, "update_drive: id is required");
	if (!path && !has_limit)
		return config_error(L, "update_drive: give a path, a rate_limit or both");
	return push_result(L,
		vm_drive_update(v->vm, id, path, has_limit ? &limit : NULL, err, sizeof(err)), err);
}

/* vm:update_net { id = ID, rx_rate_limit = {...}, tx_rate_limit = {...} }: change an
 * interface's rate limits, running or paused. */
static int m_update_net(lua_State *L)
{
	static const char *const keys[] = { "id", "rx_rate_limit", "tx_rate_limit", NULL };
	struct lvm *v = lvm_check(L, 1);
	struct rate_limit_update rx, tx;
	const char *id;
	bool has_rx, has_tx;
	char err[512];

	luaL_checktype(L, 2, LUA_TTABLE);
	lvm_only_keys(L, 2, "update_net", keys);
	id = lvm_opt_str(L, 2, "update_net", "id");
	has_rx = read_update(L, "update_net", "rx_rate_limit", &rx);
	has_tx = read_update(L, "update_net", "tx_rate_limit", &tx);
	if (!id)
		return config_error(L, "update_net: id is required");
	if (!has_rx && !has_tx)
		return config_error(L, "update_net: give rx_rate_limit, tx_rate_limit or both");
	return push_result(L,
		vm_net_update(v->vm, id, has_rx ? &rx : NULL, has_tx ? &tx : NULL, err,
			sizeof(err)),
		err);
}

/* vm:update_pmem { id = ID, rate_limit = {...} }: change a pmem device's FLUSH rate
 * limit, running or paused (Firecracker's PATCH /pmem). */
static int m_update_pmem(lua_State *L)
{
	static const char *const keys[] = { "id", "rate_limit", NULL };
	struct lvm *v = lvm_check(L, 1);
	struct rate_limit_update limit;
	const char *id;
	char err[512];

	luaL_checktype(L, 2, LUA_TTABLE);
	lvm_only_keys(L, 2, "update_pmem", keys);
	id = lvm_opt_str(L, 2, "update_pmem", "id");
	if (!read_update(L, "update_pmem", "rate_limit", &limit))
		return config_error(L, "update_pmem: rate_limit is required");
	if (!id)
		return config_error(L, "update_pmem: id is required");
	return push_result(L, vm_pmem_update(v->vm, id, &limit, err, sizeof(err)), err);
}

static const luaL_Reg methods[] = {
	{ "balloon", m_balloon },
	{ "hotplug_memory", m_hotplug_memory },
	{ "hotplug_memory_status", m_hotplug_memory_status },
	{ "balloon_stats", m_balloon_stats },
	{ "balloon_hinting", m_balloon_hinting },
	{ "update_drive", m_update_drive },
	{ "update_net", m_update_net },
	{ "update_pmem", m_update_pmem },
	{ NULL, NULL },
};

void lvm_devices_open(lua_State *L)
{
	luaL_setfuncs(L, methods, 0);
}
