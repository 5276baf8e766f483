/* The "ember.vm" userdata: a VM handle for Lua (made from a definition, or wrapping a VM
 * made elsewhere), kept alive while its VM runs, and the VM's events passed on to the
 * waits and the event queue below. Its methods are in the lvm_*.c files above it. */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "ember/config.h"
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

/* Queue an event of `v` for the Lua dispatcher (events.c). */
static void vm_event(struct lua_host *h, struct lvm *v, const char *name)
{
	lvm_push(h->L, v);
	host_queue_event(h, name);
}

static void obs_booted(struct vm *vm, void *opaque)
{
	struct lvm *v = opaque;

	(void)vm;
	vm_event(v->host, v, "boot");
}

static void obs_console(struct vm *vm, void *opaque)
{
	struct lvm *v = opaque;

	(void)vm;
	host_vm_console(v->host, v);
	vm_event(v->host, v, "console");
}

static void obs_state(struct vm *vm, enum vm_state from, void *opaque)
{
	struct lvm *v = opaque;
	enum vm_state to = vm_state(vm);

	if (from == VM_CONFIGURED)
		vm_event(v->host, v, "start");
	else if (to == VM_PAUSED)
		vm_event(v->host, v, "pause");
	else if (to == VM_RUNNING)
		vm_event(v->host, v, "resume");
}

static void obs_exited(struct vm *vm, void *opaque)
{
	struct lvm *v = opaque;
	struct lua_host *h = v->host;

	(void)vm;
	host_vm_exited(h, v);
	vm_event(h, v, "exit");
	luaL_unref(h->L, LUA_REGISTRYINDEX, v->self_ref);
	v->self_ref = LUA_NOREF;
}

static const struct vm_observer observer = {
	.booted = obs_booted,
	.console = obs_console,
	.exited = obs_exited,
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
	cfg.mmds = h->mmds;
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

static const luaL_Reg meta[] = {
	{ "__gc", m_gc },
	{ "__close", m_gc },
	{ "__tostring", m_tostring },
	{ NULL, NULL },
};

void lvm_open(lua_State *L)
{
	luaL_newmetatable(L, LVM_META);
	luaL_setfuncs(L, meta, 0);
	lua_pop(L, 1);
	lua_newtable(L);
	lua_createtable(L, 0, 1);
	lua_pushstring(L, "v");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_setfield(L, LUA_REGISTRYINDEX, WEAK_VMS);
}
