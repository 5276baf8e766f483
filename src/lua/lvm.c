/* The "ember.vm" userdata: a VM handle for Lua, with a method for each lifecycle step.
 * The other methods come from lvm_machine.c, lvm_devices.c and lvm_inspect.c. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "ember/config.h"
#include "ember/snapshot.h"
#include "ember/vm.h"
#include "internal.h"

#define WEAK_VMS "ember.vms" /* light userdata -> userdata, weak values */

struct lvm *lvm_check(lua_State *L, int idx)
{
	struct lvm *v = luaL_checkudata(L, idx, LVM_META);

	if (!v->vm)
		luaL_error(L, "vm has been freed");
	return v;
}

void lvm_push(lua_State *L, struct lvm *v)
{
	lua_getfield(L, LUA_REGISTRYINDEX, WEAK_VMS);
	lua_rawgetp(L, -1, v);
	lua_remove(L, -2);
}

static void obs_booted(struct vm *vm, void *opaque)
{
	struct lvm *v = opaque;

	(void)vm;
	host_vm_event(v->host, v, "boot");
}

static void obs_console(struct vm *vm, void *opaque)
{
	struct lvm *v = opaque;

	(void)vm;
	host_vm_console(v->host, v);
	host_vm_event(v->host, v, "console");
}

static void obs_state(struct vm *vm, enum vm_state from, void *opaque)
{
	struct lvm *v = opaque;
	enum vm_state to = vm_state(vm);

	if (from == VM_CONFIGURED)
		host_vm_event(v->host, v, "start");
	else if (to == VM_PAUSED)
		host_vm_event(v->host, v, "pause");
	else if (to == VM_RUNNING)
		host_vm_event(v->host, v, "resume");
}

static void obs_exited(struct vm *vm, void *opaque)
{
	struct lvm *v = opaque;
	struct lua_host *h = v->host;

	(void)vm;
	host_vm_exited(h, v);
	host_vm_event(h, v, "exit");
	luaL_unref(h->L, LUA_REGISTRYINDEX, v->self_ref);
	v->self_ref = LUA_NOREF;
}

static const struct vm_observer observer = {
	.booted = obs_booted, .console = obs_console, .exited = obs_exited,
	.state_changed = obs_state,
};


/* core.vm_new(def): def's keys and types were checked by ember.vm (lua/ember/init.lua). */
int lvm_new(lua_State *L)
{
	struct lua_host *h = host_get(L);
	struct vm_config cfg;
	struct lvm *v;
	char err[512];

	luaL_checktype(L, 1, LUA_TTABLE);
	lvm_read_config(L, 1, &cfg);
	if (vm_config_check(&cfg, err, sizeof(err)))
		return config_error(L, "%s", err);
	v = lvm_wrap(L, vm_new(&cfg, h->loop, err, sizeof(err)), 1);
	if (!v)
		return luaL_error(L, "%s", err);
	return 1;
}

struct lvm *lvm_wrap(lua_State *L, struct vm *vm, int def)
{
	struct lua_host *h = host_get(L);
	struct lvm *v;

	if (!vm)
		return NULL;
	def = lua_absindex(L, def);
	v = lua_newuserdatauv(L, sizeof(*v), 1);
	memset(v, 0, sizeof(*v));
	v->self_ref = LUA_NOREF;
	v->host = h;
	v->vm = vm;
	luaL_setmetatable(L, LVM_META);
	vm_set_observer(v->vm, &observer, v);
	v->next = &h->vms;
	v->prev = h->vms.prev;
	h->vms.prev->next = v;
	h->vms.prev = v;
	if (lua_istable(L, def)) {
		lua_pushvalue(L, def); /* the definition: callbacks live there */
		lua_setiuservalue(L, -2, 1);
	}
	lua_getfield(L, LUA_REGISTRYINDEX, WEAK_VMS);
	lua_pushvalue(L, -2);
	lua_rawsetp(L, -2, v);
	lua_pop(L, 1);
	if (vm_state(vm) != VM_CONFIGURED)
		lvm_keep_alive(L, v, -1);
	return v;
}

void lvm_keep_alive(lua_State *L, struct lvm *v, int idx)
{
	if (v->self_ref != LUA_NOREF)
		return;
	/* A running VM lives until it exits, even if the script drops its handle. */
	lua_pushvalue(L, idx);
	v->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}


static int m_start(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	char err[512];
	int ret = vm_start(v->vm, err, sizeof(err));

	if (!ret)
		lvm_keep_alive(L, v, 1);
	return push_result(L, ret, err);
}

static int m_pause(lua_State *L)
{
	char err[256];

	return push_result(L, vm_pause(lvm_check(L, 1)->vm, err, sizeof(err)), err);
}

static int m_resume(lua_State *L)
{
	char err[256];

	return push_result(L, vm_resume(lvm_check(L, 1)->vm, err, sizeof(err)), err);
}

static int m_stop(lua_State *L)
{
	vm_stop(lvm_check(L, 1)->vm, VM_EXIT_STOPPED, 0);
	lua_pushboolean(L, 1);
	return 1;
}

static int m_state(lua_State *L)
{
	lua_pushstring(L, vm_state_name(vm_state(lvm_check(L, 1)->vm)));
	return 1;
}

static int m_exit(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *detail;
	enum vm_exit_reason why = vm_exit_reason(v->vm, &detail);

	if (why == VM_EXIT_NONE)
		return 0;
	lua_pushstring(L, vm_exit_reason_name(why));
	lua_pushinteger(L, vm_exit_status(v->vm));
	lua_pushstring(L, detail);
	return 3;
}

static struct waiter *waiter_new(lua_State *L, struct lvm *v, enum wait_kind kind, int tidx)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		luaL_error(L, "out of memory");
	w->kind = kind;
	w->vm = v;
	w->prev = w->next = w;
	if (!lua_isnoneornil(L, tidx)) {
		w->timeout = luaL_checknumber(L, tidx);
		w->timed = true;
	}
	return w;
}

static int m_wait(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);

	if (!lua_isnoneornil(L, 2))
		luaL_checknumber(L, 2);
	if (vm_state(v->vm) == VM_EXITED)
		return m_exit(L);
	if (vm_state(v->vm) == VM_CONFIGURED)
		return push_fail(L, "cannot wait: the vm is not started");
	return host_wait(L, waiter_new(L, v, WAIT_EXIT, 2));
}

static int m_wait_for(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	const char *pattern = luaL_checkstring(L, 2);
	struct waiter *w;
	double timeout = luaL_optnumber(L, 3, 30);

	if (vm_state(v->vm) == VM_CONFIGURED || vm_state(v->vm) == VM_EXITED)
		return push_fail(L, "cannot wait for console output: the vm is not running");
	lua_settop(L, 3);
	lua_pushnumber(L, timeout);
	lua_replace(L, 3);
	w = waiter_new(L, v, WAIT_CONSOLE, 3);
	w->pattern = strdup(pattern);
	if (!w->pattern) {
		free(w);
		return luaL_error(L, "out of memory");
	}
	return host_wait(L, w);
}

static int m_send(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	size_t len;
	const char *s = luaL_checklstring(L, 2, &len);

	vm_console_send(v->vm, (const uint8_t *)s, len);
	lua_pushboolean(L, 1);
	return 1;
}

/* vm:console_since(pos) -> text, newpos: console output from stream offset pos on, for
 * readers with their own position (policies). pos nil: start at the current end. */
static int m_console_since(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	uint64_t pos;
	size_t len;
	const char *text;

	if (lua_isnoneornil(L, 2)) {
		lua_pushliteral(L, "");
		lua_pushinteger(L, (lua_Integer)vm_console_end(v->vm));
		return 2;
	}
	pos = (uint64_t)luaL_checkinteger(L, 2);
	text = vm_console_since(v->vm, &pos, &len);
	lua_pushlstring(L, text, len);
	lua_pushinteger(L, (lua_Integer)(pos + len));
	return 2;
}

/* vm:snapshot { state = PATH, mem = PATH, type = "full" | "diff" } */
static int m_snapshot(lua_State *L)
{
	struct lvm *v = lvm_check(L, 1);
	struct snapshot_params p = { 0 };
	const char *type;
	char err[512];

	luaL_checktype(L, 2, LUA_TTABLE);
	lua_getfield(L, 2, "state");
	p.state_path = luaL_optstring(L, -1, NULL);
	lua_getfield(L, 2, "mem");
	p.mem_path = luaL_optstring(L, -1, NULL);
	lua_getfield(L, 2, "type");
	type = luaL_optstring(L, -1, "full");
	if (!p.state_path || !p.mem_path)
		return luaL_error(L, "snapshot: needs state and mem paths");
	if (strcmp(type, "full") && strcmp(type, "diff"))
		return luaL_error(L, "snapshot: type '%s' is not full or diff", type);
	p.type = strcmp(type, "diff") ? SNAPSHOT_FULL : SNAPSHOT_DIFF;
	return push_result(L, vm_snapshot(v->vm, &p, err, sizeof(err)), err);
}

static int m_ctrl_alt_del(lua_State *L)
{
	if (vm_send_ctrl_alt_del(lvm_check(L, 1)->vm))
		return push_fail(L, "ctrl_alt_del: the vm is not running");
	lua_pushboolean(L, 1);
	return 1;
}

static int m_gc(lua_State *L)
{
	struct lvm *v = luaL_checkudata(L, 1, LVM_META);

	if (v->vm) {
		v->prev->next = v->next;
		v->next->prev = v->prev;
		vm_free(v->vm);
		v->vm = NULL;
	}
	return 0;
}

static int m_tostring(lua_State *L)
{
	struct lvm *v = luaL_checkudata(L, 1, LVM_META);

	lua_pushfstring(L, "ember.vm (%s)", v->vm ? vm_state_name(vm_state(v->vm)) : "freed");
	return 1;
}

static const luaL_Reg methods[] = {
	{ "start", m_start }, { "pause", m_pause }, { "resume", m_resume }, { "stop", m_stop },
	{ "state", m_state }, { "exit", m_exit }, { "wait", m_wait }, { "wait_for", m_wait_for },
	{ "send", m_send }, { "console_since", m_console_since }, { "snapshot", m_snapshot },
	{ "ctrl_alt_del", m_ctrl_alt_del }, { NULL, NULL },
};

static const luaL_Reg meta[] = {
	{ "__gc", m_gc }, { "__close", m_gc }, { "__tostring", m_tostring }, { NULL, NULL },
};

void lvm_open(lua_State *L)
{
	luaL_newmetatable(L, LVM_META);
	luaL_setfuncs(L, meta, 0);
	luaL_newlibtable(L, methods);
	luaL_setfuncs(L, methods, 0);
	lvm_machine_open(L); /* mem, msrs, exits, times, ... (lvm_machine.c) */
	lvm_devices_open(L); /* balloon, update_drive, update_net (lvm_devices.c) */
	lvm_inspect_open(L); /* regs, devices, console, send_keys (lvm_inspect.c) */
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	lua_newtable(L);
	lua_createtable(L, 0, 1);
	lua_pushstring(L, "v");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_setfield(L, LUA_REGISTRYINDEX, WEAK_VMS);
}
