/* The Lua side of the ember module (lua/ember/), built into the binary as bytecode: the
 * build compiles each file to $(BUILD)/lua/ember/NAME.luac (tools/lua_precompile.c). */
#undef linux /* a predefined macro of the C preprocessor, and one of our file names */
	.include "src/util/embed.inc"
	.macro embed name
	embed_file ember_lua_\name, "lua/ember/\name\().luac"
	.endm

	.section .rodata
	embed init
	embed policy
	embed linux
	embed repl
	embed client
	.section .note.GNU-stack, "", @progbits
