/* luaopen_ember: the C primitives (`core`) and the embedded Lua side of the module; the
 * top of src/lua below the host (host.c), which preloads it. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "ember/emulate.h"
#include "ember/log.h"
#include "ember/memory_file.h"
#include "ember/version.h"
#include "internal.h"

/* The Lua side built into the binary, as bytecode (src/lua/embedded.S). */
extern const char ember_lua_init[], ember_lua_init_end[];
extern const char ember_lua_policy[], ember_lua_policy_end[];
extern const char ember_lua_linux[], ember_lua_linux_end[];
extern const char ember_lua_repl[], ember_lua_repl_end[];
extern const char ember_lua_client[], ember_lua_client_end[];

/* Lua-side modules other than init, reachable as require "ember.<name>". */
static const struct embedded {
	const char *name;
	const char *start, *end;
} embedded[] = {
	{ "policy", ember_lua_policy, ember_lua_policy_end },
	{ "linux", ember_lua_linux, ember_lua_linux_end },
	{ "repl", ember_lua_repl, ember_lua_repl_end },
	{ "client", ember_lua_client, ember_lua_client_end },
};

static int core_config_error(lua_State *L)
{
	return config_error(L, "%s", luaL_checkstring(L, 1));
}

static int core_sleep(lua_State *L)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return luaL_error(L, "out of memory");
	w->kind = WAIT_SLEEP;
	w->timeout = luaL_checknumber(L, 1);
	w->timed = true;
	w->prev = w->next = w;
	return host_wait(L, w);
}

static int core_now(lua_State *L)
{
	lua_pushnumber(L, log_uptime_us() / 1e6);
	return 1;
}

static int core_log(lua_State *L)
{
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	int level = luaL_checkoption(L, 1, NULL, levels);

	log_msg((enum log_level)level, "lua: %s", luaL_checkstring(L, 2));
	return 0;
}

/* Where the guests built with ember live: $EMBER_GUEST_DIR, else beside the binary. */
static void push_guest_paths(lua_State *L)
{
	char exe[PATH_MAX], dir[PATH_MAX];
	const char *env = getenv("EMBER_GUEST_DIR");
	ssize_t n;

	if (env) {
		snprintf(dir, sizeof(dir), "%s", env);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = 0;
		snprintf(dir, sizeof(dir), "%s/guest", dirname(exe));
	}
	lua_createtable(L, 0, 2);
	lua_pushstring(L, dir);
	lua_setfield(L, -2, "dir");
	lua_pushfstring(L, "%s/ember-test-guest", dir);
	lua_setfield(L, -2, "test_kernel");
}

/* core.merge_memory(base, diff): apply a diff memory file onto its base. */
static int core_merge_memory(lua_State *L)
{
	char err[512];

	if (mem_file_merge(luaL_checkstring(L, 1), luaL_checkstring(L, 2), err, sizeof(err)))
		return push_fail(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

static const luaL_Reg core_funcs[] = {
	{ "vm_new", lvm_new },
	{ "sleep", core_sleep },
	{ "now", core_now },
	{ "log", core_log },
	{ "config_error", core_config_error },
	{ "restore", lvm_restore },
	{ "prewarm", lvm_prewarm },
	{ "merge_memory", core_merge_memory },
	{ "spawn", host_core_spawn },
	{ "set_dispatcher", host_core_set_dispatcher },
	{ "http_request", core_http_request },
	{ NULL, NULL },
};

/* Load lua/ember/<name>.lua from $EMBER_LUA_PATH (development, text only) or the embedded
 * copy, bytecode the build compiled from the same file: ours, so trusted like the code. */
static int load_lua(lua_State *L, const char *name, const char *start, const char *end)
{
	const char *dir = getenv("EMBER_LUA_PATH");
	char path[PATH_MAX];

	if (dir) {
		snprintf(path, sizeof(path), "%s/ember/%s.lua", dir, name);
		return luaL_loadfilex(L, path, "t");
	}
	snprintf(path, sizeof(path), "=ember/%s.lua", name);
	return luaL_loadbufferx(L, start, (size_t)(end - start), path, "b");
}

static int load_embedded(lua_State *L)
{
	const struct embedded *e = &embedded[lua_tointeger(L, lua_upvalueindex(1))];

	if (load_lua(L, e->name, e->start, e->end) != LUA_OK)
		return lua_error(L);
	lua_call(L, 0, 1);
	return 1;
}

/* The "ember.vm" metatable, its __index holding the methods of each lvm_*.c file. */
static void open_vm(lua_State *L)
{
	lvm_open(L);
	luaL_getmetatable(L, LVM_META);
	lua_newtable(L);
	lvm_lifecycle_open(L); /* start, pause, wait_for, snapshot, ... (lvm_lifecycle.c) */
	lvm_machine_open(L);   /* mem, msrs, exits, times, ... (lvm_machine.c) */
	lvm_devices_open(L);   /* balloon, update_drive, update_net (lvm_devices.c) */
	lvm_inspect_open(L);   /* regs, devices, console, send_keys (lvm_inspect.c) */
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
}

int luaopen_ember(lua_State *L);
int luaopen_ember(lua_State *L)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	for (size_t i = 0; i < sizeof(embedded) / sizeof(embedded[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "ember.%s", embedded[i].name);
		lua_pushinteger(L, (lua_Integer)i);
		lua_pushcclosure(L, load_embedded, 1);
		lua_setfield(L, -2, name);
	}
	lua_pop(L, 1);
	config_error_open(L);
	open_vm(L);
	if (load_lua(L, "init", ember_lua_init, ember_lua_init_end) != LUA_OK)
		return lua_error(L);
	luaL_newlib(L, core_funcs);
	lua_pushstring(L, EMBER_VERSION);
	lua_setfield(L, -2, "version");
	push_guest_paths(L);
	lua_setfield(L, -2, "guest");
	/* What kind of KVM this is: on an emulating host guest user space cannot run. */
	lua_createtable(L, 0, 1);
	lua_pushboolean(L, emulate_host_detect());
	lua_setfield(L, -2, "emulating");
	lua_setfield(L, -2, "host");
	/* The VM methods table, so the Lua side can add methods written in Lua. */
	luaL_getmetatable(L, LVM_META);
	lua_getfield(L, -1, "__index");
	lua_setfield(L, -3, "vm_methods");
	lua_pop(L, 1);
	lua_call(L, 1, 1);
	return 1;
}
