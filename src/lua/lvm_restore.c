/* core.restore: a VM brought back from a snapshot, as ember.restore (init.lua) asks. */
#include <string.h>

#include <lauxlib.h>

#include "ember/snapshot.h"
#include "internal.h"

#define MAX_OVERRIDES 16

static const char *opt_string(lua_State *L, int t, const char *key)
{
	const char *s;

	lua_getfield(L, t, key);
	s = lua_isnil(L, -1) ? NULL : lua_tostring(L, -1);
	lua_pop(L, 1); /* the table keeps the string alive */
	return s;
}

/* Overrides of a restore, { id = "value", ... } under `key`: into ids/vals (strings owned
 * by the definition table); returns how many. Raises for anything else. */
static unsigned read_overrides(lua_State *L, const char *key, const char *form,
	const char *ids[MAX_OVERRIDES], const char *vals[MAX_OVERRIDES])
{
	unsigned n = 0;

	if (lua_getfield(L, 1, key) == LUA_TTABLE) {
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			if (n == MAX_OVERRIDES)
				config_error(L, "restore: more than %d %s overrides", MAX_OVERRIDES,
					key);
			if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
				config_error(L, "%s: expects { %s }", key, form);
			ids[n] = lua_tostring(L, -2);
			vals[n++] = lua_tostring(L, -1);
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	return n;
}

/* core.prewarm(def): { memory_mib = N, track_dirty_pages = bool, mem = PATH }, checked by
 * ember.prewarm (init.lua). Returns true, or nil and the reason. */
int lvm_prewarm(lua_State *L)
{
	lua_Integer mib;
	bool dirty;
	char err[256];

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "memory_mib");
	mib = lua_tointeger(L, -1);
	lua_getfield(L, 1, "track_dirty_pages");
	dirty = lua_toboolean(L, -1);
	lua_pop(L, 2);
	if (mib <= 0)
		return config_error(L, "prewarm: memory_mib must be a positive integer");
	if (vm_prewarm((uint64_t)mib, dirty, opt_string(L, 1, "mem"), err, sizeof(err)))
		return push_fail(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

/* core.restore(def): def's keys and types were checked by ember.restore (init.lua). */
int lvm_restore(lua_State *L)
{
	struct lua_host *h = host_get(L);
	struct restore_params p = { 0 };
	struct net_override nets[MAX_OVERRIDES];
	struct drive_override drives[MAX_OVERRIDES];
	const char *mem, *uffd, *console, *ids[MAX_OVERRIDES], *vals[MAX_OVERRIDES];
	char err[512];
	struct vm *vm;

	luaL_checktype(L, 1, LUA_TTABLE);
	p.state_path = opt_string(L, 1, "state");
	mem = opt_string(L, 1, "mem");
	uffd = opt_string(L, 1, "uffd");
	if (!p.state_path)
		return config_error(L, "restore: state (the state file) is required");
	if (!!mem == !!uffd)
		return config_error(L,
			"restore: give exactly one of mem (memory file) or uffd "
			"(page-fault handler socket)");
	p.backend = mem ? MEM_BACKEND_FILE : MEM_BACKEND_UFFD;
	p.backend_path = mem ? mem : uffd;
	lua_getfield(L, 1, "resume");
	p.resume = lua_toboolean(L, -1);
	lua_getfield(L, 1, "track_dirty_pages");
	p.track_dirty_pages = lua_toboolean(L, -1);
	lua_pop(L, 2);
	console = opt_string(L, 1, "console");
	if (console && strcmp(console, "stdio") && strcmp(console, "none"))
		return config_error(L, "console: '%s' is not stdio or none", console);
	p.console_stdio = !console || !strcmp(console, "stdio");
	p.vsock_uds_path = opt_string(L, 1, "vsock");
	lua_getfield(L, 1, "clock_realtime");
	p.clock_realtime = lua_toboolean(L, -1);
	lua_pop(L, 1);
	p.nr_drive_overrides = read_overrides(L, "drives", "drive_id = \"new path\"", ids, vals);
	for (unsigned i = 0; i < p.nr_drive_overrides; i++)
		drives[i] = (struct drive_override){ .drive_id = ids[i], .path_on_host = vals[i] };
	p.drive_overrides = drives;
	p.nr_net_overrides = read_overrides(L, "net", "iface_id = \"tap name\"", ids, vals);
	for (unsigned i = 0; i < p.nr_net_overrides; i++)
		nets[i] = (struct net_override){ .iface_id = ids[i], .host_dev_name = vals[i] };
	p.net_overrides = nets;
	p.mmds = h->mmds;
	vm = vm_restore(&p, h->loop, err, sizeof(err));
	if (!vm)
		return push_fail(L, err);
	lvm_wrap(L, vm, 1);
	return 1;
}
