/* The operator's methods of "ember.vm" (the REPL): regs, devices, console, send_keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "ember/arch.h"
#include "ember/vm.h"
#include "internal.h"

#define ESCAPE_KEY 0x1d /* Ctrl-] leaves vm:console(), as in telnet and virsh */
#define DEVICES_MAX 64

/* __tostring of a vm:regs() table: name=0x... in the architecture's order (upvalue). */
static int regs_tostring(lua_State *L)
{
	luaL_Buffer b;
	lua_Integer n = luaL_len(L, lua_upvalueindex(1));

	luaL_buffinit(L, &b);
	for (lua_Integer i = 1; i <= n; i++) {
		const char *name;
		char line[64];
		lua_geti(L, lua_upvalueindex(1), i);
		name = lua_tostring(L, -1);
		lua_getfield(L, 1, name ? name : "");
		snprintf(line, sizeof(line), "%s%7s=%016llx",
			i == 1               ? ""
				: i % 4 == 1 ? "\n"
					     : " ",
			name ? name : "?", (unsigned long long)lua_tointeger(L, -1));
		lua_pop(L, 2);
		luaL_addstring(&b, line);
	}
	luaL_pushresult(&b);
	return 1;
}

/* vm:regs(n): a table of the registers of paused vCPU n, or nil, msg. */
static int m_regs(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	lua_Integer index = luaL_optinteger(L, 2, 0);
	struct vm_reg regs[VM_REGS_MAX];
	unsigned count = VM_REGS_MAX;
	char err[256];

	if (index < 0 || index >= (lua_Integer)vm_vcpu_count(v->vm))
		return luaL_error(L, "regs: no vcpu %d (the vm has %d)", (int)index,
			(int)vm_vcpu_count(v->vm));
	if (vm_vcpu_regs(v->vm, (unsigned)index, regs, &count, err, sizeof(err)))
		return push_fail(L, err);
	lua_createtable(L, 0, (int)count);
	lua_createtable(L, 0, 2);          /* metatable */
	lua_createtable(L, (int)count, 0); /* order, for __tostring */
	for (unsigned i = 0; i < count; i++) {
		lua_pushinteger(L, (lua_Integer)regs[i].value);
		lua_setfield(L, -4, regs[i].name);
		lua_pushstring(L, regs[i].name);
		lua_rawseti(L, -2, i + 1);
	}
	lua_pushcclosure(L, regs_tostring, 1);
	lua_setfield(L, -2, "__tostring");
	lua_pushliteral(L, "ember.regs");
	lua_setfield(L, -2, "__name");
	lua_setmetatable(L, -2);
	return 1;
}

struct stat_entry {
	const char *name;
	lua_Integer value;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct stat_entry *)a)->name, ((const struct stat_entry *)b)->name);
}

/* Append " name=value" for each entry of the stats table on top, sorted by name. */
static void format_stats(lua_State *L, char *out, size_t size)
{
	struct stat_entry e[16];
	size_t n = 0, len = strlen(out);

	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (n < 16 && lua_type(L, -2) == LUA_TSTRING) {
			e[n].name = lua_tostring(L, -2); /* kept alive by the table */
			e[n++].value = lua_tointeger(L, -1);
		}
		lua_pop(L, 1);
	}
	qsort(e, n, sizeof(e[0]), by_name);
	if (n && len < 65) /* the stats column */
		len += (size_t)snprintf(out + len, size - len, "%*s", (int)(65 - len), "");
	for (size_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, " %s=%lld", e[i].name,
			(long long)e[i].value);
}

static const char *field(lua_State *L, int idx, const char *key)
{
	const char *s;

	lua_getfield(L, idx, key);
	s = lua_tostring(L, -1);
	lua_pop(L, 1); /* the device table keeps a string field alive */
	return s ? s : "?";
}

/* __tostring of a vm:devices() list: a header and one line per device. */
static int devices_tostring(lua_State *L)
{
	lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
	char line[512];

	lua_settop(L, 1);
	snprintf(line, sizeof(line), "%-12s %-28s %-22s stats", "name", "kind", "address");
	lua_pushstring(L, line);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, 1, i) != LUA_TTABLE) {
			lua_pop(L, 1);
			continue;
		}
		lua_getfield(L, -1, "base");
		lua_getfield(L, -2, "len");
		snprintf(line, sizeof(line), "\n%-12s %-28s %s 0x%llx+%lld", field(L, -3, "name"),
			field(L, -3, "kind"), field(L, -3, "bus"),
			(unsigned long long)lua_tointeger(L, -2), (long long)lua_tointeger(L, -1));
		lua_pop(L, 2);
		if (lua_getfield(L, -1, "stats") == LUA_TTABLE)
			format_stats(L, line, sizeof(line));
		lua_pop(L, 2);
		lua_pushstring(L, line);
		lua_concat(L, 2);
	}
	return 1;
}

/* vm:devices(): { {name=, kind=, bus=, base=, len=, stats={...}}, ... }, or nil, msg. */
static int m_devices(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct vm_device_info *d = calloc(DEVICES_MAX, sizeof(*d));
	int n;

	if (!d)
		return luaL_error(L, "out of memory");
	n = vm_devices(v->vm, d, DEVICES_MAX);
	if (n < 0) {
		free(d);
		return push_fail(L, "devices: the vm is not running or paused");
	}
	if (n > DEVICES_MAX)
		n = DEVICES_MAX;
	/* No Lua error can happen below but out of memory, which the state survives. */
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_createtable(L, 0, 6);
		lua_pushstring(L, d[i].name);
		lua_setfield(L, -2, "name");
		lua_pushstring(L, d[i].kind);
		lua_setfield(L, -2, "kind");
		lua_pushstring(L, d[i].bus);
		lua_setfield(L, -2, "bus");
		set_integer(L, "base", d[i].base);
		set_integer(L, "len", d[i].len);
		lua_createtable(L, 0, (int)d[i].nr_stats);
		for (unsigned k = 0; k < d[i].nr_stats; k++)
			set_integer(L, d[i].stats[k].name, d[i].stats[k].value);
		lua_setfield(L, -2, "stats");
		lua_rawseti(L, -2, i + 1);
	}
	free(d);
	lua_createtable(L, 0, 2);
	lua_pushcfunction(L, devices_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pushliteral(L, "ember.devices");
	lua_setfield(L, -2, "__name");
	lua_setmetatable(L, -2);
	return 1;
}

/* The operator typed the escape: the waiting task goes on. */
static void on_detached(void *opaque)
{
	struct waiter *w = opaque;

	fputs("\n", stdout); /* the guest's last line may lack its end */
	fflush(stdout);
	lua_pushboolean(w->task->co, 1);
	host_wake(w->task->host, w, 1);
}

/* vm:console(): the terminal is the guest's until Ctrl-]; true, or nil, msg. */
static int m_console(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct task *t = task_of(L);
	struct waiter *w;

	if (!t || t->co != L)
		return luaL_error(L, "console: works only in a script, callback or REPL line");
	if (vm_state(v->vm) == VM_EXITED)
		return push_fail(L, "console: the vm has exited");
	w = calloc(1, sizeof(*w));
	if (!w)
		return luaL_error(L, "out of memory");
	w->kind = WAIT_ATTACH;
	w->vm = v;
	w->prev = w->next = w;
	if (vm_console_attach(v->vm, ESCAPE_KEY, on_detached, w)) {
		free(w);
		return push_fail(L, "console: the terminal is already the guest's console");
	}
	fputs("[attached to the guest console; Ctrl-] returns to the prompt]\n", stdout);
	fflush(stdout);
	return host_wait(L, w);
}

static const luaL_Reg methods[] = {
	{ "regs", m_regs },
	{ "devices", m_devices },
	{ "console", m_console },
	{ NULL, NULL },
};

void lvm_inspect_open(lua_State *L)
{
	luaL_setfuncs(L, methods, 0);
	lua_getfield(L, -1, "send");
	lua_setfield(L, -2, "send_keys");
}
